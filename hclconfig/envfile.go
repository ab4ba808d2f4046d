package hclconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/joho/godotenv"
)

// maxEnvFileSize bounds what one env file may hold. Env files are a few
// lines; the bound keeps a mistyped path (a log file, a device) from being
// read whole into memory.
const maxEnvFileSize = 4 << 20

// readEnvFiles reads the env files named by items, later files overriding
// earlier ones. Paths resolve against dir. A path starting with "-" may be
// missing (systemd's EnvironmentFile=- rule); any other missing file is an
// error on the list element that names it.
//
// The files are parsed with godotenv, never loaded: godotenv.Load would set
// the values in the runner's own environment, and from there in every app.
func readEnvFiles(items []stringItem, dir string) (map[string]string, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	env := make(map[string]string)
	for _, it := range items {
		name, optional := strings.CutPrefix(it.val, "-")
		if name == "" {
			diags = append(diags, it.errorf("Invalid env file path",
				"An env_file entry is empty. Give the path of a file of KEY=value lines, relative to the config file; a leading \"-\" makes it optional."))
			continue
		}
		path := name
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		m, err := readEnvFile(path)
		switch {
		case err == nil:
			for k, v := range m {
				env[k] = v
			}
		case errors.Is(err, fs.ErrNotExist) && optional:
			// The "-" prefix exists for exactly this: a file such as
			// .env.local that only some checkouts have.
		case errors.Is(err, fs.ErrNotExist):
			diags = append(diags, it.errorf("Env file not found",
				fmt.Sprintf("The env file %q does not exist (looked for %s). Create it, correct the path, or write %q to make the file optional.", name, path, "-"+name)))
		default:
			var perr *envParseError
			if errors.As(err, &perr) {
				diags = append(diags, it.errorf("Invalid env file",
					fmt.Sprintf("Cannot parse %s: %s. An env file holds KEY=value lines; blank lines and lines starting with # are ignored.", path, perr)))
			} else {
				diags = append(diags, it.errorf("Cannot read env file",
					fmt.Sprintf("Cannot read %s: %s.", path, unwrapPathError(err))))
			}
		}
	}
	return env, diags
}

// envParseError is a godotenv syntax error, with the line it is about when
// that can be found.
type envParseError struct {
	line int
	msg  string
}

func (e *envParseError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("line %d: %s", e.line, e.msg)
	}
	return e.msg
}

func readEnvFile(path string) (map[string]string, error) {
	data, err := readEnvFileBytes(path)
	if err != nil {
		return nil, err
	}
	return parseEnvFile(data)
}

func readEnvFileBytes(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("it is not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxEnvFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxEnvFileSize {
		return nil, fmt.Errorf("it is larger than %d MiB, too large for an env file", maxEnvFileSize>>20)
	}
	return data, nil
}

// parseEnvFile is godotenv's parser with its errors made readable: godotenv
// quotes the whole rest of the file after "near", which this turns into a
// line number.
func parseEnvFile(data []byte) (map[string]string, error) {
	m, err := godotenv.UnmarshalBytes(data)
	if err == nil {
		return m, nil
	}
	msg := err.Error()
	perr := &envParseError{msg: msg}
	if i := strings.Index(msg, " near "); i >= 0 {
		perr.msg = msg[:i]
		var rest string
		if _, scanErr := fmt.Sscanf(msg[i+len(" near "):], "%q", &rest); scanErr == nil {
			norm := bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
			if off := len(norm) - len(rest); off >= 0 && bytes.HasSuffix(norm, []byte(rest)) {
				perr.line = bytes.Count(norm[:off], []byte("\n")) + 1
			}
		}
	}
	return nil, perr
}

// unwrapPathError drops the "open /path: " prefix of an *fs.PathError when
// the message already names the path.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
