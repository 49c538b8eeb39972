package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// bundleManifest is manifest.json at the bundle's root. src/kube/bundle-manifest.ts
// reads the same shape; change both together.
type bundleManifest struct {
	SchemaVersion     int               `json:"schemaVersion"`
	KubernetesVersion string            `json:"kubernetesVersion"`
	Platform          platform          `json:"platform"`
	GoVersion         string            `json:"goVersion"`
	Components        map[string]string `json:"components"`
	Images            []bundleImage     `json:"images"`
	Preload           *bundlePreload    `json:"preload,omitempty"`
	Files             []bundleFile      `json:"files"`
}

// bundlePreload names the archive of containerd's state holding the images
// unpacked (build.sh's preload part), when the bundle has one.
type bundlePreload struct {
	File        string `json:"file"`
	Snapshotter string `json:"snapshotter"`
	Namespace   string `json:"namespace"`
}

const preloadFile = "preload/containerd-overlayfs.tar"

type bundleImage struct {
	Ref            string `json:"ref"`
	File           string `json:"file"`
	ManifestDigest string `json:"manifestDigest"`
}

type bundleFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	Mode   string `json:"mode"`
	SHA256 string `json:"sha256"`
}

var componentName = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

func manifestCommand(args []string) error {
	fl := flag.NewFlagSet("manifest", flag.ContinueOnError)
	dir := fl.String("dir", "", "bundle directory")
	kubeVersion := fl.String("kubernetes-version", "", "Kubernetes release, e.g. v1.37.2")
	goVersion := fl.String("go", "", "Go toolchain that built the bundle")
	var comps listFlag
	fl.Var(&comps, "component", "NAME=VERSION (repeatable)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *kubeVersion == "" || *goVersion == "" {
		return errors.New("-dir, -kubernetes-version and -go are required")
	}
	m := bundleManifest{
		SchemaVersion:     1,
		KubernetesVersion: *kubeVersion,
		Platform:          platform{Architecture: "amd64", OS: "linux"},
		GoVersion:         *goVersion,
		Components:        map[string]string{},
		Images:            []bundleImage{},
	}
	for _, c := range comps {
		name, ver, ok := strings.Cut(c, "=")
		if !ok || !componentName.MatchString(name) || ver == "" {
			return fmt.Errorf("-component %q: want NAME=VERSION", c)
		}
		m.Components[name] = ver
	}
	err := filepath.WalkDir(*dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(*dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() || rel == "manifest.json" || rel == "manifest.json.tmp" {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", rel)
		}
		f, err := hashFile(p, rel)
		if err != nil {
			return err
		}
		m.Files = append(m.Files, f)
		if rel == preloadFile {
			m.Preload = &bundlePreload{File: rel, Snapshotter: "overlayfs", Namespace: "k8s.io"}
		}
		if strings.HasPrefix(rel, "images/") && strings.HasSuffix(rel, ".tar") {
			img, err := readImageRef(p)
			if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			img.File = rel
			m.Images = append(m.Images, img)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	sort.Slice(m.Images, func(i, j int) bool { return m.Images[i].Ref < m.Images[j].Ref })
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(out, '\n'))
	return err
}

func hashFile(p, rel string) (bundleFile, error) {
	f, err := os.Open(p)
	if err != nil {
		return bundleFile{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return bundleFile{}, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return bundleFile{}, err
	}
	return bundleFile{
		Path:   rel,
		Size:   st.Size(),
		Mode:   fmt.Sprintf("%04o", st.Mode().Perm()),
		SHA256: hex.EncodeToString(h.Sum(nil)),
	}, nil
}

// readImageRef reads index.json from an OCI layout archive: the name the
// image gets in containerd, and the digest of its manifest.
func readImageRef(archive string) (bundleImage, error) {
	f, err := os.Open(archive)
	if err != nil {
		return bundleImage{}, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return bundleImage{}, errors.New("no index.json: not an OCI image layout")
		}
		if err != nil {
			return bundleImage{}, err
		}
		if hdr.Name != "index.json" {
			continue
		}
		var idx index
		if err := json.NewDecoder(tr).Decode(&idx); err != nil {
			return bundleImage{}, fmt.Errorf("index.json: %w", err)
		}
		if len(idx.Manifests) != 1 {
			return bundleImage{}, fmt.Errorf("index.json lists %d manifests, want 1", len(idx.Manifests))
		}
		d := idx.Manifests[0]
		ref := d.Annotations[annotationContainerdName]
		if ref == "" {
			return bundleImage{}, fmt.Errorf("index.json has no %s annotation", annotationContainerdName)
		}
		return bundleImage{Ref: ref, ManifestDigest: d.Digest}, nil
	}
}
