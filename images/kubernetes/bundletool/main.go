// Command bundletool writes the node bundle's OCI image archives and its
// manifest.json. It uses the standard library only, and the same inputs always
// give the same bytes: entries sorted, owners 0:0, one fixed timestamp, gzip
// without name or time.
//
//	bundletool image -ref REF -created RFC3339 -out FILE.tar [-file DEST=SRC]... [-tree DEST=DIR]...
//	                 [-dir PATH:MODE]... [-entrypoint PATH] [-user UID:GID]
//	bundletool manifest -dir BUNDLE -kubernetes-version V -go GOVERSION [-component NAME=VERSION]...
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bundletool image|manifest [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "image":
		err = imageCommand(os.Args[2:])
	case "manifest":
		err = manifestCommand(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (want image or manifest)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bundletool %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return fmt.Sprint(*l) }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
