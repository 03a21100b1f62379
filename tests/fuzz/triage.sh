#!/bin/sh
# Classify a crashing input of a libFuzzer harness (docs/fuzzing.md):
#   sh tests/fuzz/triage.sh HARNESS_BINARY INPUT
# Replays it and prints one word and the top frame: "fedhpc" (the fault is in fedhpc's code or on a
# buffer fedhpc allocated: a bug to fix), "libhdf5" (a memory error inside libhdf5 on a buffer
# libhdf5 allocated while it decodes a damaged file: a bug of the HDF5 library, not fixable here)
# or "none" (does not reproduce). Exit status 1 for "fedhpc", else 0.
bin=$1
in=$2
out=$(mktemp)
dir=$(mktemp -d)
trap 'rm -rf "$out" "$dir"' EXIT
cp "$in" "$dir/"
# as a one-file corpus with -runs=0: libFuzzer then also checks the input for leaks
"$bin" -runs=0 -artifact_prefix="$dir/" "$dir" >"$out" 2>&1
if [ $? = 0 ]; then
    echo "none"
    exit 0
fi
# frames of the error itself (up to the first blank line after ERROR:) and of the allocation
err=$(awk '/ERROR: |runtime error|^fuzz: |leak of /{on=1} on&&/^$/{exit} on' "$out")
alloc=$(awk '/(allocated|freed) by thread/{on=1; next} on&&/^$/{exit} on' "$out")
# the first frame that is not the sanitizer's own (interceptors, malloc, the harness binary itself)
first() { grep -E '^ *#[0-9]+ ' | grep -v -E ' in (__interceptor_|__asan|__sanitizer|__ubsan|malloc|calloc|realloc|free|strdup|memcpy|memmove|memset) ' |
    grep -v -E '\(/[^)]*/(fuzz_[a-z_]+|fuzz_replay_[a-z_]+)\+0x| in __(mem|str)[a-z_]+ |sysdeps/|/libc.so' | head -1; }
top=$(printf '%s\n' "$err" | first)
atop=$(printf '%s\n' "$alloc" | first)
if printf '%s' "$top" | grep -q libhdf5 && { [ -z "$atop" ] || printf '%s' "$atop" | grep -q libhdf5; }; then
    echo "libhdf5 $top"
    exit 0
fi
echo "fedhpc ${top:-$(grep -m1 -E 'ERROR|runtime error|^fuzz: ' "$out")}"
exit 1
