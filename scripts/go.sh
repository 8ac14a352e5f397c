# Sourced by the other scripts: finds the go command even where sudo's
# secure_path hides /usr/local/go/bin, and moves to the repository's root.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v go >/dev/null; then
	for dir in /usr/local/go/bin "$HOME/go/bin" /usr/lib/go/bin; do
		[[ -x $dir/go ]] && PATH=$dir:$PATH && break
	done
fi
command -v go >/dev/null || { echo "playground needs Go (https://go.dev/dl/); 'go' is not on PATH" >&2; exit 1; }
