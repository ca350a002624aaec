// sluice-runtime-wrapper: an OCI runtime that removes, from what a container
// asks for, the capabilities this machine's bounding set lacks, then execs
// runc with the unchanged arguments.
//
// Why: `docker run --privileged` (which kind uses for every node) asks runc
// for every capability the kernel knows. Where the host's own bounding set
// lacks one (here CAP_SYS_RESOURCE), runc fails with "unable to apply caps:
// operation not permitted". A capability the host lacks cannot be granted to
// a container anyway, so dropping it from the request changes nothing else.
//
// What is edited: for `create` and `run`, the bundle's config.json
// (--bundle/-b, default the working directory); for `exec`, the --process/-p
// file. Every capability list (bounding, effective, inheritable, permitted,
// ambient) loses the names whose number is not in /proc/self/status CapBnd.
// Every other field is written back as read (numbers kept exact).
//
// The real runtime: $SLUICE_RUNC, else /usr/sbin/runc or /usr/bin/runc.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// capNames maps each capability name to its number (linux/capability.h).
var capNames = map[string]uint{
	"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
	"CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
	"CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
	"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
	"CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
	"CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
	"CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
	"CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
	"CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
	"CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
	"CAP_CHECKPOINT_RESTORE": 40,
}

// globalWithValue lists runc's global options that take a separate value, so
// that the subcommand is found after them.
var globalWithValue = map[string]bool{"--root": true, "--log": true, "--log-format": true, "--criu": true, "--rootless": true}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "sluice-runtime-wrapper: "+format+"\n", args...)
	os.Exit(1)
}

// boundingSet reads this process's capability bounding set.
func boundingSet() (uint64, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if hex, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			return strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		}
	}
	return 0, fmt.Errorf("no CapBnd line in /proc/self/status")
}

// subcommand returns the runc subcommand and the index of its first argument.
func subcommand(args []string) (string, int) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return a, i + 1
		}
		if globalWithValue[a] {
			i++
		}
	}
	return "", len(args)
}

// optionValue finds `--long X`, `--long=X` or `-s X` among a subcommand's arguments.
func optionValue(args []string, long, short string) (string, bool) {
	for i, a := range args {
		if a == long || a == short {
			if i+1 < len(args) {
				return args[i+1], true
			}
			return "", false
		}
		if v, ok := strings.CutPrefix(a, long+"="); ok {
			return v, true
		}
	}
	return "", false
}

// filterCaps removes unavailable capabilities from one capabilities object
// ({"bounding": [...], ...}); it reports whether anything changed.
func filterCaps(caps map[string]any, bounding uint64) bool {
	changed := false
	for set, v := range caps {
		list, ok := v.([]any)
		if !ok {
			continue
		}
		kept := make([]any, 0, len(list))
		for _, c := range list {
			name, _ := c.(string)
			if n, known := capNames[strings.ToUpper(name)]; known && bounding&(1<<n) == 0 {
				changed = true
				continue
			}
			kept = append(kept, c)
		}
		caps[set] = kept
	}
	return changed
}

// editFile rewrites one JSON file; capsAt picks the capabilities object in it.
func editFile(path string, bounding uint64, capsAt func(map[string]any) map[string]any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	caps := capsAt(doc)
	if caps == nil || !filterCaps(caps, bounding) {
		return nil
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	// Written beside the file and renamed, so runc never reads half a file.
	tmp := path + ".sluice-tmp"
	if err := os.WriteFile(tmp, out, info.Mode().Perm()); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func object(m map[string]any, key string) map[string]any {
	if m == nil {
		return nil
	}
	v, _ := m[key].(map[string]any)
	return v
}

func realRuntime() string {
	if p := os.Getenv("SLUICE_RUNC"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/sbin/runc", "/usr/bin/runc"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "/usr/bin/runc"
}

func main() {
	args := os.Args[1:]
	bounding, err := boundingSet()
	if err != nil {
		fail("reading the bounding set: %v", err)
	}
	cmd, first := subcommand(args)
	rest := args[first:]
	switch cmd {
	case "create", "run":
		bundle, ok := optionValue(rest, "--bundle", "-b")
		if !ok {
			bundle = "."
		}
		err = editFile(filepath.Join(bundle, "config.json"), bounding, func(doc map[string]any) map[string]any {
			return object(object(doc, "process"), "capabilities")
		})
	case "exec":
		if process, ok := optionValue(rest, "--process", "-p"); ok {
			err = editFile(process, bounding, func(doc map[string]any) map[string]any {
				return object(doc, "capabilities")
			})
		}
	}
	if err != nil {
		fail("%s: %v", cmd, err)
	}
	runc := realRuntime()
	if err := syscall.Exec(runc, append([]string{runc}, args...), os.Environ()); err != nil {
		fail("exec %s: %v", runc, err)
	}
}
