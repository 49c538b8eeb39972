package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
	// containerd names an imported image after this annotation when it holds a
	// full reference; the OCI ref.name alone would get an import- prefix.
	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = "org.opencontainers.image.ref.name"
	defaultPath              = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

type imageConfig struct {
	Created      string        `json:"created"`
	Architecture string        `json:"architecture"`
	OS           string        `json:"os"`
	Config       runConfig     `json:"config"`
	RootFS       rootFS        `json:"rootfs"`
	History      []historyItem `json:"history"`
}

type runConfig struct {
	User       string   `json:"User,omitempty"`
	Env        []string `json:"Env"`
	Entrypoint []string `json:"Entrypoint,omitempty"`
	WorkingDir string   `json:"WorkingDir"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type historyItem struct {
	Created   string `json:"created"`
	CreatedBy string `json:"created_by"`
}

type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

type index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

// entry is one path of the layer.
type entry struct {
	name     string // absolute, slash-separated
	typeflag byte
	mode     int64
	src      string // regular files: where the bytes come from
	linkname string // symlinks
}

func imageCommand(args []string) error {
	fl := flag.NewFlagSet("image", flag.ContinueOnError)
	ref := fl.String("ref", "", "full image reference, e.g. registry.k8s.io/pause:3.10.2")
	created := fl.String("created", "", "RFC 3339 time for the config and every tar entry")
	out := fl.String("out", "", "archive to write")
	entrypoint := fl.String("entrypoint", "", "image entrypoint (a single path)")
	user := fl.String("user", "", "image user, UID:GID")
	var files, trees, dirs listFlag
	fl.Var(&files, "file", "DEST=SRC: a regular file, mode 0755 (repeatable)")
	fl.Var(&trees, "tree", "DEST=DIR: DIR's files, directories and symlinks below DEST, modes kept (repeatable)")
	fl.Var(&dirs, "dir", "PATH:MODE: an empty directory, octal mode (repeatable)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fl.Args())
	}
	if *ref == "" || *out == "" || *created == "" {
		return errors.New("-ref, -out and -created are required")
	}
	tag, err := refTag(*ref)
	if err != nil {
		return err
	}
	when, err := time.Parse(time.RFC3339, *created)
	if err != nil {
		return fmt.Errorf("-created: %w", err)
	}
	entries, err := collectEntries(files, trees, dirs)
	if err != nil {
		return err
	}
	layerTar, err := writeLayer(entries, when)
	if err != nil {
		return err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if _, err := zw.Write(layerTar); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}

	cfg := imageConfig{
		Created:      when.UTC().Format(time.RFC3339),
		Architecture: "amd64",
		OS:           "linux",
		Config:       runConfig{User: *user, Env: []string{defaultPath}, WorkingDir: "/"},
		RootFS:       rootFS{Type: "layers", DiffIDs: []string{digestOf(layerTar)}},
		History:      []historyItem{{Created: when.UTC().Format(time.RFC3339), CreatedBy: "devcluster images/kubernetes/bundletool"}},
	}
	if *entrypoint != "" {
		cfg.Config.Entrypoint = []string{*entrypoint}
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	man := manifest{
		SchemaVersion: 2,
		MediaType:     mediaTypeManifest,
		Config:        descriptor{MediaType: mediaTypeConfig, Digest: digestOf(cfgJSON), Size: int64(len(cfgJSON))},
		Layers:        []descriptor{{MediaType: mediaTypeLayer, Digest: digestOf(gz.Bytes()), Size: int64(gz.Len())}},
	}
	manJSON, err := json.Marshal(man)
	if err != nil {
		return err
	}
	idx := index{
		SchemaVersion: 2,
		MediaType:     mediaTypeIndex,
		Manifests: []descriptor{{
			MediaType:   mediaTypeManifest,
			Digest:      digestOf(manJSON),
			Size:        int64(len(manJSON)),
			Platform:    &platform{Architecture: "amd64", OS: "linux"},
			Annotations: map[string]string{annotationContainerdName: *ref, annotationRefName: tag},
		}},
	}
	idxJSON, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	blobs := [][]byte{cfgJSON, gz.Bytes(), manJSON}
	if err := writeLayout(*out, when, idxJSON, blobs); err != nil {
		return err
	}
	fmt.Printf("%s %s %s\n", *ref, digestOf(manJSON), *out)
	return nil
}

// refTag returns the tag of a full reference registry/name:tag.
func refTag(ref string) (string, error) {
	slash := strings.Index(ref, "/")
	colon := strings.LastIndex(ref, ":")
	if slash <= 0 || colon < slash || colon == len(ref)-1 || strings.Contains(ref, "@") {
		return "", fmt.Errorf("-ref %q is not a full reference registry/name:tag", ref)
	}
	return ref[colon+1:], nil
}

func collectEntries(files, trees, dirs []string) ([]entry, error) {
	byName := map[string]entry{}
	add := func(e entry) error {
		if !strings.HasPrefix(e.name, "/") || path.Clean(e.name) != e.name || e.name == "/" {
			return fmt.Errorf("layer path %q must be absolute and clean", e.name)
		}
		if old, ok := byName[e.name]; ok && !(old.typeflag == tar.TypeDir && e.typeflag == tar.TypeDir) {
			return fmt.Errorf("layer path %q given twice", e.name)
		}
		byName[e.name] = e
		// Parents are explicit entries, so the unpacked tree never depends on
		// the unpacker's defaults.
		for dir := path.Dir(e.name); dir != "/"; dir = path.Dir(dir) {
			if _, ok := byName[dir]; !ok {
				byName[dir] = entry{name: dir, typeflag: tar.TypeDir, mode: 0o755}
			}
		}
		return nil
	}
	for _, f := range files {
		dest, src, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("-file %q: want DEST=SRC", f)
		}
		st, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("-file %q: %w", f, err)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("-file %q: %s is not a regular file", f, src)
		}
		if err := add(entry{name: dest, typeflag: tar.TypeReg, mode: 0o755, src: src}); err != nil {
			return nil, err
		}
	}
	for _, t := range trees {
		dest, root, ok := strings.Cut(t, "=")
		if !ok {
			return nil, fmt.Errorf("-tree %q: want DEST=DIR", t)
		}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil || rel == "." {
				return err
			}
			name := path.Join(dest, filepath.ToSlash(rel))
			info, err := os.Lstat(p)
			if err != nil {
				return err
			}
			mode := int64(info.Mode().Perm())
			switch {
			case info.Mode()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				if err != nil {
					return err
				}
				return add(entry{name: name, typeflag: tar.TypeSymlink, mode: 0o777, linkname: target})
			case info.IsDir():
				return add(entry{name: name, typeflag: tar.TypeDir, mode: mode})
			case info.Mode().IsRegular():
				return add(entry{name: name, typeflag: tar.TypeReg, mode: mode, src: p})
			default:
				return fmt.Errorf("-tree %q: %s is neither file, directory nor symlink", t, p)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	for _, d := range dirs {
		name, modeText, ok := strings.Cut(d, ":")
		if !ok {
			return nil, fmt.Errorf("-dir %q: want PATH:MODE", d)
		}
		mode, err := strconv.ParseInt(modeText, 8, 32)
		if err != nil || mode < 0 || mode > 0o7777 {
			return nil, fmt.Errorf("-dir %q: mode must be octal, at most 7777", d)
		}
		if err := add(entry{name: name, typeflag: tar.TypeDir, mode: mode}); err != nil {
			return nil, err
		}
	}
	if len(byName) == 0 {
		return nil, errors.New("the layer would be empty: give -file, -tree or -dir")
	}
	out := make([]entry, 0, len(byName))
	for _, e := range byName {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func writeLayer(entries []entry, when time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Typeflag: e.typeflag,
			Name:     strings.TrimPrefix(e.name, "/"),
			Mode:     e.mode,
			ModTime:  when,
			Linkname: e.linkname,
			Format:   tar.FormatPAX,
		}
		var data []byte
		switch e.typeflag {
		case tar.TypeDir:
			hdr.Name += "/"
		case tar.TypeReg:
			var err error
			if data, err = os.ReadFile(e.src); err != nil {
				return nil, err
			}
			hdr.Size = int64(len(data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeLayout writes the OCI image layout as a tar, to a temporary file first
// so a failed run never leaves a truncated archive under the final name.
func writeLayout(out string, when time.Time, indexJSON []byte, blobs [][]byte) error {
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	tw := tar.NewWriter(f)
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: when, Format: tar.FormatPAX})
	}
	file := func(name string, data []byte) error {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: when, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := file("index.json", indexJSON); err != nil {
		return err
	}
	if err := dir("blobs/"); err != nil {
		return err
	}
	if err := dir("blobs/sha256/"); err != nil {
		return err
	}
	sort.Slice(blobs, func(i, j int) bool { return digestOf(blobs[i]) < digestOf(blobs[j]) })
	for _, b := range blobs {
		if err := file("blobs/sha256/"+strings.TrimPrefix(digestOf(b), "sha256:"), b); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
