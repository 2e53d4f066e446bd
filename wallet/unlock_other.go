//go:build !unix

package wallet

import "errors"

func readFD(fd int) ([]byte, error) {
	return nil, errors.New("--password-fd works on Unix only; use --password-file")
}
