package hclconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/joho/godotenv"
)

// maxEnvEntries bounds the environment variables one load copies into all
// the apps together. The global env and env files are copied into every
// app, so a 1 MiB env file named by a thousand apps would otherwise be a
// billion map entries; real files are far below this.
const maxEnvEntries = 1 << 17

// envReader reads the env files of one load. Each file is read and parsed
// once however many apps name it, and the variables copied into apps are
// counted against maxEnvEntries.
type envReader struct {
	dir     string
	cache   map[string]envFileResult
	copied  int
	refused bool // the budget ran out; reported once
}

type envFileResult struct {
	env map[string]string
	err error
}

func newEnvReader(dir string) *envReader {
	return &envReader{dir: dir, cache: make(map[string]envFileResult)}
}

// charge counts n more variables copied for app (or for the top level when
// app is ""). Past the budget ok is false, and the caller leaves the copy
// out; the first refusal comes with a diagnostic at subject.
func (r *envReader) charge(n int, app string, subject hcl.Range) (d *hcl.Diagnostic, ok bool) {
	if r.refused {
		return nil, false
	}
	if r.copied+n <= maxEnvEntries {
		r.copied += n
		return nil, true
	}
	r.refused = true
	where := "the top-level env"
	if app != "" {
		where = fmt.Sprintf("app %q", app)
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Environment too large",
		Detail:   fmt.Sprintf("With %s, the environments of the apps add up to more than %s variables (each app gets its own copy of the global env and env files). No config needs that many; check which env files this file names.", where, thousands(maxEnvEntries)),
		Subject:  subject.Ptr(),
	}, false
}

// read reads the env files named by items for app ("" for the top level),
// later files overriding earlier ones. Paths resolve against the reader's
// dir. A path starting with "-" may be missing (systemd's EnvironmentFile=-
// rule); any other missing file is an error on the list element that names
// it. paths are the absolute paths of every entry, optional or not,
// present or not.
//
// The files are parsed with godotenv, never loaded: godotenv.Load would set
// the values in the runner's own environment, and from there in every app.
func (r *envReader) read(items []stringItem, app string) (env map[string]string, paths []string, diags hcl.Diagnostics) {
	env = make(map[string]string)
	for _, it := range items {
		name, optional := strings.CutPrefix(it.val, "-")
		if name == "" {
			diags = append(diags, it.errorf("Invalid env file path",
				"An env_file entry is empty. Give the path of a file of KEY=value lines, relative to the config file; a leading \"-\" makes it optional."))
			continue
		}
		path := resolvePath(r.dir, name)
		paths = append(paths, path)
		res, ok := r.cache[path]
		if !ok {
			res.env, res.err = readEnvFile(path)
			r.cache[path] = res
		}
		m, err := res.env, res.err
		switch {
		case err == nil:
			// Merging is work too: a list naming one big file many times
			// must not merge it that many times unchecked.
			if d, ok := r.charge(len(m), app, it.rng()); !ok {
				if d != nil {
					diags = append(diags, d)
				}
				continue
			}
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
	return env, paths, diags
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
	if fi.Size() > maxFileSize {
		return nil, fmt.Errorf("the file is %s bytes, more than the 1 MiB an env file may have", thousands(fi.Size()))
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, errors.New("the file is larger than the 1 MiB an env file may have")
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
