module devcluster.local/kube-bundle/bundletool

go 1.24
