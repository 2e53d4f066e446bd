package wallet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
)

// DefaultCredName is the systemd credential an Unlocker reads when CredName
// is empty: $CREDENTIALS_DIRECTORY/taobox-wallet, which a unit provides with
// LoadCredential=taobox-wallet:/etc/taobox/wallet.pass (or
// LoadCredentialEncrypted= / SetCredentialEncrypted= for a password sealed
// to the machine's TPM).
const DefaultCredName = "taobox-wallet"

// Unlocker finds the password of encrypted key files without an
// environment variable ever holding it. Password tries, in this order, and
// uses the first source that is configured:
//
//  1. PasswordFD: a file descriptor the parent opened (--password-fd N);
//  2. PasswordFile: a file of mode 0600 or stricter (--password-file PATH);
//  3. the systemd credential CredName in CredDir ($CREDENTIALS_DIRECTORY),
//     when that file exists;
//  4. Prompt, which the caller sets only when a terminal is attached.
//
// From each source the password is everything up to the first newline (a
// trailing "\r" is dropped too); it must not be empty. An explicitly given
// source (1 or 2) that fails is an error: no other source is tried after
// it. The first password found is kept, so one command reads an fd once
// and asks once, and uses one password for every key it opens.
//
// The zero value (and a nil *Unlocker) has no source: an encrypted key then
// fails with ErrNoPassword, in one line that names what was tried and what
// to do. An Unlocker is not safe for concurrent use.
type Unlocker struct {
	// PasswordFD is a file descriptor to read the password from; 0 means
	// none (standard input is not read this way; use PasswordFile
	// /dev/stdin). It is left open.
	PasswordFD int
	// PasswordFile is a file holding the password; "" means none.
	PasswordFile string
	// CredName names the credential file in CredDir; "" means
	// DefaultCredName.
	CredName string
	// CredDir is systemd's credentials directory; the caller passes
	// $CREDENTIALS_DIRECTORY, and "" means none.
	CredDir string
	// Prompt asks a person for a password, without echo, showing prompt;
	// nil means no terminal is attached.
	Prompt func(prompt string) ([]byte, error)

	label    string // what the password is for, in messages
	password []byte
	source   string
}

// named returns u labelled with what the next password is for (a new
// Unlocker with no sources when u is nil).
func (u *Unlocker) named(what string) *Unlocker {
	if u == nil {
		u = &Unlocker{}
	}
	u.label = what
	return u
}

func (u *Unlocker) what() string {
	if u == nil || u.label == "" {
		return "the key"
	}
	return u.label
}

// Validate reports a configuration that cannot work: a negative fd, or
// both an fd and a file (which one is meant is unclear).
func (u *Unlocker) Validate() error {
	if u == nil {
		return nil
	}
	if u.PasswordFD < 0 {
		return fmt.Errorf("--password-fd %d: a file descriptor is 1 or more (0, standard input: use --password-file /dev/stdin)", u.PasswordFD)
	}
	if u.PasswordFD > 0 && u.PasswordFile != "" {
		return fmt.Errorf("give either --password-fd or --password-file, not both")
	}
	return nil
}

func (u *Unlocker) credName() string {
	if u.CredName == "" {
		return DefaultCredName
	}
	return u.CredName
}

// Source says where the password came from (or will come from), for
// messages: "--password-fd 3", "--password-file PATH", "systemd credential
// NAME", "the terminal", or "no source".
func (u *Unlocker) Source() string {
	switch {
	case u == nil:
		return "no source"
	case u.source != "":
		return u.source
	case u.PasswordFD > 0:
		return "--password-fd " + strconv.Itoa(u.PasswordFD)
	case u.PasswordFile != "":
		return "--password-file " + u.PasswordFile
	case u.CredDir != "" && exists(filepath.Join(u.CredDir, u.credName())):
		return "systemd credential " + u.credName() + " (" + filepath.Join(u.CredDir, u.credName()) + ")"
	case u.Prompt != nil:
		return "the terminal"
	}
	return "no source"
}

// Password returns the password for an existing encrypted key, from the
// first configured source (see Unlocker). Errors name the source and wrap
// ErrNoPassword when there is none, ErrPermissions for a password file
// others may read.
func (u *Unlocker) Password() ([]byte, error) {
	return u.get(false)
}

// NewPassword returns a password for sealing a new key, as Password does,
// but a prompt asks twice and the two must match; the password must pass
// CheckNewPassword.
func (u *Unlocker) NewPassword() ([]byte, error) {
	pw, err := u.get(true)
	if err != nil {
		return nil, err
	}
	if err := CheckNewPassword(pw); err != nil {
		u.password = nil
		return nil, fmt.Errorf("%w (from %s)", err, u.Source())
	}
	return pw, nil
}

func (u *Unlocker) get(confirm bool) ([]byte, error) {
	if u != nil && u.password != nil {
		return u.password, nil
	}
	if err := u.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoPassword, err)
	}
	if u == nil {
		u = &Unlocker{}
	}
	if confirm && u.label == "" {
		u.label = "the new key"
	}
	pw, src, err := u.read(confirm)
	if err != nil {
		return nil, err
	}
	u.password, u.source = pw, src
	return pw, nil
}

func (u *Unlocker) read(confirm bool) ([]byte, string, error) {
	if u.PasswordFD > 0 {
		src := "--password-fd " + strconv.Itoa(u.PasswordFD)
		pw, err := readFD(u.PasswordFD)
		if err != nil {
			return nil, src, fmt.Errorf("%w for %s: reading %s: %v (the parent must open that fd with the password, e.g. 3< FILE)", ErrNoPassword, u.what(), src, err)
		}
		return checkRead(pw, src, u.what())
	}
	if u.PasswordFile != "" {
		src := "--password-file " + u.PasswordFile
		pw, err := readPasswordFile(u.PasswordFile)
		if err != nil {
			return nil, src, fmt.Errorf("%w for %s: %w", ErrNoPassword, u.what(), err)
		}
		return checkRead(pw, src, u.what())
	}
	credNote := "CREDENTIALS_DIRECTORY not set"
	if u.CredDir != "" {
		p := filepath.Join(u.CredDir, u.credName())
		credNote = p + " does not exist"
		if exists(p) {
			src := "systemd credential " + u.credName() + " (" + p + ")"
			pw, err := readPasswordFile(p)
			if err != nil {
				return nil, src, fmt.Errorf("%w for %s: %w", ErrNoPassword, u.what(), err)
			}
			return checkRead(pw, src, u.what())
		}
	}
	if u.Prompt != nil {
		pw, err := u.Prompt(fmt.Sprintf("Password for %s: ", u.what()))
		if err != nil {
			return nil, "the terminal", fmt.Errorf("%w for %s: reading the terminal: %w", ErrNoPassword, u.what(), err)
		}
		if confirm {
			again, err := u.Prompt("Repeat the password: ")
			if err != nil {
				return nil, "the terminal", fmt.Errorf("%w for %s: reading the terminal: %w", ErrNoPassword, u.what(), err)
			}
			if !bytes.Equal(pw, again) {
				return nil, "the terminal", fmt.Errorf("%w for %s: the two passwords differ", ErrNoPassword, u.what())
			}
		}
		return checkRead(pw, "the terminal", u.what())
	}
	return nil, "", fmt.Errorf("%w for %s (it is encrypted): tried --password-fd and --password-file (neither given), "+
		"the systemd credential %s (%s), a terminal prompt (no terminal); give --password-file PATH (mode 0600) or --password-fd N, "+
		"or LoadCredential=%s:PATH in the systemd unit", ErrNoPassword, u.what(), u.credName(), credNote, u.credName())
}

func checkRead(pw []byte, src, what string) ([]byte, string, error) {
	if len(pw) == 0 {
		return nil, src, fmt.Errorf("%w for %s: %s gave an empty password", ErrNoPassword, what, src)
	}
	return pw, src, nil
}

// readPasswordFile reads the first line of a password file that only its
// owner may read.
func readPasswordFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s does not exist", path)
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := st.Mode().Perm(); st.Mode().IsRegular() && perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%w: password file %s has mode %04o, so others may read it; run: chmod 600 %s", ErrPermissions, path, perm, path)
	}
	return readLine(f)
}

// readLine reads up to the first newline (or EOF), at most maxPasswordLen
// bytes, dropping the newline and a "\r" before it. It reads one byte at a
// time so that nothing after the newline is consumed from a shared fd.
func readLine(r io.Reader) ([]byte, error) {
	var line []byte
	b := make([]byte, 1)
	for {
		n, err := r.Read(b)
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			line = append(line, b[0])
			if len(line) > maxPasswordLen {
				return nil, fmt.Errorf("longer than %d bytes", maxPasswordLen)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return bytes.TrimSuffix(line, []byte("\r")), nil
}
