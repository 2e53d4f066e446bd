package firmware

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"text/template"
)

//go:embed taobox.service.tmpl
var unitTemplate string

// InstallOptions say where `taobox firmware install` writes.
type InstallOptions struct {
	// Prefix is prepended to every path written (a staging root for a
	// package or an image); default "/".
	Prefix string
	// Binary is the taobox the unit runs, as seen on the box. Required.
	Binary string
	// ConfigPath is the config the unit names, as seen on the box.
	// Default /etc/taobox/taobox.toml.
	ConfigPath string
	// DataDir is the directory the unit may write. Default /var/lib/taobox.
	DataDir string
}

// UnitPath is where the systemd unit goes (under Prefix).
const UnitPath = "/etc/systemd/system/taobox.service"

// Install writes the systemd unit and the example config under Prefix.
// An existing config is kept (the example goes beside it as
// taobox.toml.example); the unit is replaced. It returns the paths
// written.
func Install(o InstallOptions) ([]string, error) {
	if o.Prefix == "" {
		o.Prefix = "/"
	}
	if o.ConfigPath == "" {
		o.ConfigPath = "/etc/taobox/taobox.toml"
	}
	if o.DataDir == "" {
		o.DataDir = "/var/lib/taobox"
	}
	if !filepath.IsAbs(o.Binary) || !filepath.IsAbs(o.ConfigPath) || !filepath.IsAbs(o.DataDir) {
		return nil, fmt.Errorf("firmware install: binary %q, config %q and data dir %q must be absolute paths", o.Binary, o.ConfigPath, o.DataDir)
	}
	unit, err := RenderUnit(o)
	if err != nil {
		return nil, err
	}
	var written []string
	put := func(path string, data []byte, mode os.FileMode) error {
		full := filepath.Join(o.Prefix, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fmt.Errorf("firmware install: %w", err)
		}
		if err := writeAtomic(full, data, mode, nil); err != nil {
			return err
		}
		written = append(written, full)
		return nil
	}
	if err := put(UnitPath, unit, 0o644); err != nil {
		return written, err
	}
	cfg := o.ConfigPath
	if _, err := os.Stat(filepath.Join(o.Prefix, cfg)); err == nil {
		cfg += ".example"
	} else if !errors.Is(err, fs.ErrNotExist) {
		return written, fmt.Errorf("firmware install: %w", err)
	}
	if err := put(cfg, ExampleConfig, 0o644); err != nil {
		return written, err
	}
	return written, nil
}

// RenderUnit returns the systemd unit for o.
func RenderUnit(o InstallOptions) ([]byte, error) {
	t, err := template.New("unit").Parse(unitTemplate)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err = t.Execute(&b, map[string]string{"Binary": o.Binary, "Config": o.ConfigPath, "DataDir": o.DataDir})
	return b.Bytes(), err
}
