#!/usr/bin/env bash
# Copy the JavaScript the book needs into _vendor/ (gitignored), so the built book loads nothing
# from a CDN: MathJax 3 (math), require.js and the ipywidgets HTML manager (saved widget views).
# Pinned npm packages are fetched with `npm pack` (tarballs only, no node_modules) into a temporary
# folder and only the files the pages load are kept (~6 MB). Idempotent: a second run with the
# same versions returns at once. _config.yml points Sphinx and MyST-NB at these files.
set -euo pipefail
cd "$(dirname "$0")/.."

MATHJAX=3.2.2
REQUIREJS=2.3.8
HTML_MANAGER=1.0.15
PINS="mathjax@$MATHJAX requirejs@$REQUIREJS @jupyter-widgets/html-manager@$HTML_MANAGER"
DEST=_vendor

if [ -f "$DEST/VERSIONS" ] && [ "$(cat "$DEST/VERSIONS")" = "$PINS" ] \
    && [ -f "$DEST/mathjax/tex-chtml.js" ] && [ -f "$DEST/requirejs/require.js" ] \
    && [ -f "$DEST/html-manager/embed-amd.js" ]; then
    echo "vendor: $DEST/ up to date ($PINS)"
    exit 0
fi

if ! command -v npm >/dev/null; then
    echo "vendor: npm not found; it is needed once to fetch MathJax and the widget manager." >&2
    echo "vendor: install Node.js and npm (Debian: apt-get install -y nodejs npm, which 'make setup' does), then rerun." >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "vendor: fetching $PINS"
# shellcheck disable=SC2086
if ! (cd "$tmp" && npm pack --silent --prefer-offline $PINS >/dev/null); then
    echo "vendor: 'npm pack $PINS' failed: the npm registry must be reachable once (or the packages in npm's cache)." >&2
    exit 1
fi

out="$tmp/out"
mkdir -p "$out/mathjax" "$out/requirejs" "$out/html-manager" "$tmp/x"

# MathJax: the combined TeX→CHTML component, its web fonts, and the TeX extensions it loads on
# demand (e.g. \boldsymbol); MathJax finds them relative to tex-chtml.js.
tar -xzf "$tmp/mathjax-$MATHJAX.tgz" -C "$tmp/x" package/LICENSE package/es5/tex-chtml.js \
    package/es5/output/chtml/fonts/woff-v2 package/es5/input/tex/extensions
cp -R "$tmp/x/package/es5/." "$out/mathjax/"
cp "$tmp/x/package/LICENSE" "$out/mathjax/LICENSE"
rm -rf "$tmp/x/package"

tar -xzf "$tmp/requirejs-$REQUIREJS.tgz" -C "$tmp/x" package/require.js
cp "$tmp/x/package/require.js" "$out/requirejs/require.js"
rm -rf "$tmp/x/package"

# The widget manager: embed-amd.js bundles the base, controls and output widgets; its Font Awesome
# fonts (woff2 is all a current browser asks for) sit beside it — book/widgets-shim.js tells
# require.js that the bundle lives here, so the fonts resolve.
tar -xzf "$tmp/jupyter-widgets-html-manager-$HTML_MANAGER.tgz" -C "$tmp/x" package/dist
cp "$tmp/x/package/dist/embed-amd.js" "$tmp/x/package/dist/"*.woff2 "$out/html-manager/"

echo "$PINS" > "$out/VERSIONS"
rm -rf "$DEST"
mv "$out" "$DEST"
echo "vendor: wrote $DEST/ ($(du -sh "$DEST" | cut -f1))"
