#!/bin/sh
# Add FoI Studio to the desktop's menu and file associations (for one user, no root):
# desktop entry, AppStream metainfo, the .foi project type, and the icon in every size.
#
#   packaging/linux/install.sh                 # after `pip install foi-studio` (runs foi-desktop)
#   "FoI Studio/_internal/linux/install.sh"    # from the bundle (runs the bundle's foi-studio)
#   install.sh --uninstall                     # remove them again
#
# DATA_HOME (default: $XDG_DATA_HOME or ~/.local/share) says where they go.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
data=${DATA_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}}
id=io.github.foistudio.foistudio

if [ -x "$here/../../foi-studio" ]; then             # inside the bundle
    exec_path=$(cd "$here/../.." && pwd)/foi-studio
    icons=$here/../foi_desktop/resources/icons/hicolor
else                                                  # the source tree
    exec_path=foi-desktop
    icons=$here/../../resources/icons/hicolor
fi

refresh() {
    command -v update-desktop-database >/dev/null && update-desktop-database -q "$data/applications" || true
    command -v update-mime-database >/dev/null && update-mime-database "$data/mime" || true
    command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$data/icons/hicolor" || true
}

if [ "${1:-}" = "--uninstall" ]; then
    rm -f "$data/applications/foi-studio.desktop" "$data/metainfo/$id.metainfo.xml" \
          "$data/mime/packages/foi-studio.xml" "$data"/icons/hicolor/*/apps/foi-studio.png
    refresh
    echo "FoI Studio's desktop entry, file types and icons are removed from $data."
    exit 0
fi

mkdir -p "$data/applications" "$data/metainfo" "$data/mime/packages"
# Exec and TryExec name this installation's program; the rest of the entry is as shipped.
sed -e "s|^Exec=foi-desktop|Exec=\"$exec_path\"|" -e "s|^TryExec=foi-desktop|TryExec=$exec_path|" \
    "$here/foi-studio.desktop" > "$data/applications/foi-studio.desktop.tmp"
mv "$data/applications/foi-studio.desktop.tmp" "$data/applications/foi-studio.desktop"
cp "$here/$id.metainfo.xml" "$data/metainfo/$id.metainfo.xml"
cp "$here/foi-studio-mime.xml" "$data/mime/packages/foi-studio.xml"
for folder in "$icons"/*x*; do
    size=$(basename "$folder")
    mkdir -p "$data/icons/hicolor/$size/apps"
    cp "$folder/apps/foi-studio.png" "$data/icons/hicolor/$size/apps/foi-studio.png"
done
refresh
echo "FoI Studio is in the applications menu and opens .foi projects (installed under $data)."
