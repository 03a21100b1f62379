#!/bin/sh
# Fetch Debian's dataset-fashion-mnist .deb with `apt-get download` (no root needed) and unpack
# its four idx .gz files into DIR.
set -e
dir=${1:?usage: fetch_fmnist.sh DIR}
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -d /usr/share/datasets/fashion-mnist ]; then
    src=/usr/share/datasets/fashion-mnist
else
    ( cd "$tmp" && apt-get download -q dataset-fashion-mnist >/dev/null 2>&1 ) || {
        if [ "$(id -u)" = 0 ]; then apt-get update -q >/dev/null && ( cd "$tmp" && apt-get download -q dataset-fashion-mnist >/dev/null ); fi; } || {
        echo "fetch_fmnist: 'apt-get download dataset-fashion-mnist' failed (run 'apt-get update' as root first?)" >&2; exit 1; }
    dpkg-deb -x "$tmp"/dataset-fashion-mnist_*.deb "$tmp/x"
    src="$tmp/x/usr/share/datasets/fashion-mnist"
fi
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    cp "$src/$f" "$dir/$f.part" && mv "$dir/$f.part" "$dir/$f"
done
echo "fetch_fmnist: Fashion-MNIST in $dir"
