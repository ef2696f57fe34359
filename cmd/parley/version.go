package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version overrides the module version when set at build time with
// -ldflags "-X main.version=v1.2.3" (make release does this). Left empty,
// `parley version` reports the version Go recorded in the binary: the
// module version under `go install …@v1.2.3`, or a pseudo-version derived
// from the VCS revision when built from a clone.
var version string

// buildInfo is what `parley version` prints, read from the binary.
type buildInfo struct {
	Version   string // module version, or "(devel)"
	Revision  string // VCS commit, empty when the build recorded none
	Time      string // commit time (RFC 3339), empty when unknown
	Modified  bool   // the work tree had uncommitted changes
	GoVersion string
	Platform  string // GOOS/GOARCH
}

// readBuildInfo collects the version fields from the binary's build info;
// override, when not empty, replaces the module version.
func readBuildInfo(bi *debug.BuildInfo, ok bool, override string) buildInfo {
	b := buildInfo{Version: "(devel)", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if ok && bi != nil {
		if bi.Main.Version != "" {
			b.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			b.GoVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.time":
				b.Time = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if override != "" {
		b.Version = override
	}
	return b
}

// print writes the version on the first line and the details below it.
func (b buildInfo) print(w io.Writer) {
	fmt.Fprintf(w, "parley %s\n", b.Version)
	if b.Revision != "" {
		rev := b.Revision
		if b.Modified {
			rev += " (modified)"
		}
		fmt.Fprintf(w, "  revision  %s\n", rev)
	}
	if b.Time != "" {
		fmt.Fprintf(w, "  committed %s\n", b.Time)
	}
	fmt.Fprintf(w, "  go        %s %s\n", b.GoVersion, b.Platform)
}

func printVersion(w io.Writer) {
	bi, ok := debug.ReadBuildInfo()
	readBuildInfo(bi, ok, version).print(w)
}
