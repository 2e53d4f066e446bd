package wallet

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func writePw(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, mode)
	return p
}

func TestUnlockerSources(t *testing.T) {
	credDir := t.TempDir()
	os.WriteFile(filepath.Join(credDir, DefaultCredName), []byte("from-cred\n"), 0o400)
	os.WriteFile(filepath.Join(credDir, "other"), []byte("other-cred"), 0o400)
	prompt := func(string) ([]byte, error) { return []byte("from-prompt"), nil }
	file := writePw(t, "from-file\r\nsecond line\n", 0o600)

	for _, tc := range []struct {
		name       string
		u          *Unlocker
		want       string
		wantSource string
	}{
		{"file wins over cred and prompt", &Unlocker{PasswordFile: file, CredDir: credDir, Prompt: prompt}, "from-file", "--password-file " + file},
		{"cred wins over prompt", &Unlocker{CredDir: credDir, Prompt: prompt}, "from-cred", "systemd credential " + DefaultCredName},
		{"named cred", &Unlocker{CredDir: credDir, CredName: "other"}, "other-cred", "systemd credential other"},
		{"missing cred falls to prompt", &Unlocker{CredDir: t.TempDir(), Prompt: prompt}, "from-prompt", "the terminal"},
		{"prompt", &Unlocker{Prompt: prompt}, "from-prompt", "the terminal"},
	} {
		pw, err := tc.u.Password()
		if err != nil || string(pw) != tc.want || !strings.HasPrefix(tc.u.Source(), tc.wantSource) {
			t.Errorf("%s: %q, %v from %q; want %q from %q", tc.name, pw, err, tc.u.Source(), tc.want, tc.wantSource)
		}
	}
}

func TestUnlockerFD(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("fds are Unix")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w.Write([]byte("pipe-pass\nrest"))
	w.Close()
	u := &Unlocker{PasswordFD: int(r.Fd()), PasswordFile: "", Prompt: func(string) ([]byte, error) { t.Fatal("prompted"); return nil, nil }}
	pw, err := u.Password()
	if err != nil || string(pw) != "pipe-pass" || u.Source() != "--password-fd "+strconv.Itoa(int(r.Fd())) {
		t.Fatalf("%q, %v, %s", pw, err, u.Source())
	}
	// Cached: a second key in the same command does not read again.
	if pw, err := u.Password(); err != nil || string(pw) != "pipe-pass" {
		t.Fatalf("second Password: %q, %v", pw, err)
	}
	// The fd stays open and positioned after the line.
	rest := make([]byte, 10)
	n, _ := r.Read(rest)
	if string(rest[:n]) != "rest" {
		t.Fatalf("after the password the fd holds %q", rest[:n])
	}
	// A closed fd is a clear error.
	bad := &Unlocker{PasswordFD: 1000}
	if _, err := bad.Password(); !errors.Is(err, ErrNoPassword) || !strings.Contains(err.Error(), "--password-fd 1000") {
		t.Fatalf("bad fd: %v", err)
	}
}

func TestUnlockerErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		u       *Unlocker
		want    error
		mention string
	}{
		{"nil", nil, ErrNoPassword, "tried --password-fd"},
		{"nothing", &Unlocker{}, ErrNoPassword, "CREDENTIALS_DIRECTORY not set"},
		{"cred dir without the file", &Unlocker{CredDir: "/nonexistent-dir"}, ErrNoPassword, "does not exist"},
		{"missing file", &Unlocker{PasswordFile: "/nonexistent/pw", Prompt: func(string) ([]byte, error) { return []byte("x"), nil }}, ErrNoPassword, "/nonexistent/pw does not exist"},
		{"empty file", &Unlocker{PasswordFile: writePw(t, "\n", 0o600)}, ErrNoPassword, "empty password"},
		{"both fd and file", &Unlocker{PasswordFD: 3, PasswordFile: "x"}, ErrNoPassword, "not both"},
		{"negative fd", &Unlocker{PasswordFD: -1}, ErrNoPassword, "/dev/stdin"},
		{"long", &Unlocker{PasswordFile: writePw(t, strings.Repeat("x", 2000), 0o600)}, ErrNoPassword, "longer"},
	} {
		_, err := tc.u.Password()
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.mention) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want %v mentioning %q in one line", tc.name, err, tc.want, tc.mention)
		}
	}
	// The prompt's own error stays visible to the caller (an interrupted
	// prompt is told apart from a wrong password).
	errPrompt := errors.New("interrupted")
	for _, confirm := range []bool{false, true} {
		u := &Unlocker{Prompt: func(string) ([]byte, error) { return nil, errPrompt }}
		get := u.Password
		if confirm {
			get = u.NewPassword
		}
		if _, err := get(); !errors.Is(err, ErrNoPassword) || !errors.Is(err, errPrompt) {
			t.Errorf("prompt failed (confirm %v): %v, want both ErrNoPassword and the prompt's error", confirm, err)
		}
	}
	if runtime.GOOS != "windows" {
		u := &Unlocker{PasswordFile: writePw(t, "password1\n", 0o644)}
		if _, err := u.Password(); !errors.Is(err, ErrPermissions) || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("world-readable password file: %v", err)
		}
	}
}

func TestNewPassword(t *testing.T) {
	answers := []string{"long-password", "long-pasword"}
	u := &Unlocker{Prompt: func(string) ([]byte, error) { a := answers[0]; answers = answers[1:]; return []byte(a), nil }}
	if _, err := u.NewPassword(); !errors.Is(err, ErrNoPassword) || !strings.Contains(err.Error(), "differ") {
		t.Fatalf("mismatched: %v", err)
	}
	answers = []string{"long-password", "long-password"}
	if pw, err := u.NewPassword(); err != nil || string(pw) != "long-password" {
		t.Fatalf("%q %v", pw, err)
	}
	short := &Unlocker{PasswordFile: writePw(t, "short\n", 0o600)}
	if _, err := short.NewPassword(); !errors.Is(err, ErrWeakPassword) || !strings.Contains(err.Error(), "--password-file") {
		t.Fatalf("short: %v", err)
	}
}
