#!/bin/sh
# Rebuild the bona-fide clip set of the liveness benchmark (BPCER) in ../shared-clips/liveness
# (or $1) from git mirrors of the repositories that ship the clips. Every clip is listed in
# bench/liveness_clips.csv with its person, source and licence; this script is the other half:
# where each byte comes from, checked against a SHA-256.
#
# A mirror is looked for at $MIRRORS/<owner>+<name>/repo (default MIRRORS=/work/.mirror, where the
# sessions' fetch tool puts them), else a bare clone is made in $CACHE (default
# ../shared-clips/.git-cache) with `git clone --bare` from GitHub. Files are taken with
# `git show <commit>:<path>`, so the commit must be in the mirror.
#
#   sh bench/fetch_clips.sh              # -> ../shared-clips/liveness
#   sh bench/fetch_clips.sh /some/dir
set -eu

REPO_DIR=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$REPO_DIR/../shared-clips/liveness}
MIRRORS=${MIRRORS:-/work/.mirror}
CACHE=${CACHE:-$REPO_DIR/../shared-clips/.git-cache}
mkdir -p "$OUT"

LP=KwaiVGI/LivePortrait               # MIT
LP_C=1986663be3b6902605d32200c01f4bfd36cda83d
LP_OLD=abcf7204dd31b6e36afce92e4aff2fbb2afe75d8   # d5/d7/d8.mp4 were replaced by .pkl after this
XP=bytedance/X-Portrait               # Apache-2.0
XP_C=be4d60bb3a51913e2ae26566b717998afcf574dd
LS=bytedance/LatentSync               # Apache-2.0
LS_C=a229c3948406bc2cf6eaf4873e662e70c6a04746

gitdir() {
    m="$MIRRORS/$(echo "$1" | tr / +)/repo"
    if [ -d "$m" ]; then echo "$m"; return; fi
    c="$CACHE/$(echo "$1" | tr / +).git"
    [ -d "$c" ] || git clone --quiet --bare "https://github.com/$1.git" "$c" >&2
    echo "$c"
}

# file  repository  commit  path  sha256
while read -r file repo commit path sha; do
    [ -n "$file" ] || continue
    g=$(gitdir "$repo")
    git --git-dir="$g" show "$commit:$path" >"$OUT/$file.tmp"
    got=$(sha256sum "$OUT/$file.tmp" | cut -d' ' -f1)
    if [ "$got" != "$sha" ]; then
        echo "fetch_clips: $file: sha256 $got, expected $sha" >&2
        rm -f "$OUT/$file.tmp"
        exit 1
    fi
    mv "$OUT/$file.tmp" "$OUT/$file"
    echo "$file <- $repo@$commit:$path"
done <<EOF
driving_d0.mp4 $LP $LP_C assets/examples/driving/d0.mp4 63f6f9962e1fdf6e6722172e7a18155204858d5d5ce3b1e0646c150360c33bed
driving_d3.mp4 $LP $LP_C assets/examples/driving/d3.mp4 ef5c86e49b1b43dcb1449b499eb5a7f0cbae2f78aec08b5598193be1e4257099
driving_d6.mp4 $LP $LP_C assets/examples/driving/d6.mp4 00e3ea79bbf28cbdc4fbb67ec655d9a0fe876e880ec45af55ae481348d0c0fff
driving_d9.mp4 $LP $LP_C assets/examples/driving/d9.mp4 9a414aa1d547be35306d692065a2157434bf40a6025ba8e30ce12e5bb322cc33
driving_d10.mp4 $LP $LP_C assets/examples/driving/d10.mp4 ac7ee3c2419046f11dc230b6db33c2391a98334eba2b1d773e7eb9627992622f
driving_d11.mp4 $LP $LP_C assets/examples/driving/d11.mp4 94b449a25686eddd42e244fb571c908a123aa0154776682601df1f3830f8f65c
driving_d12.mp4 $LP $LP_C assets/examples/driving/d12.mp4 2895169e5aa2a882d39dfc80a17a3eab1cf6ec23b9b6f6be76bae48deda15219
driving_d13.mp4 $LP $LP_C assets/examples/driving/d13.mp4 d03e39c28323cde1c5fc6c5629aa83fe6c834fa7c9ed2dac969e1247eaafdb60
driving_d14.mp4 $LP $LP_C assets/examples/driving/d14.mp4 465e72fbf26bf4ed46d1adf7aab8a7344aac54a2f92c4d82a1d53127f0170472
driving_d18.mp4 $LP $LP_C assets/examples/driving/d18.mp4 1dc94c1fec7ef7dc831c8a49f0e1788ae568812cb68e62f6875d9070f573d02a
driving_d19.mp4 $LP $LP_C assets/examples/driving/d19.mp4 3047ba66296d96b8a4584e412e61493d7bc0fa5149c77b130e7feea375e698bd
driving_d20.mp4 $LP $LP_C assets/examples/driving/d20.mp4 1e249873c21abf27b3c9f405a1b5283ef1b70e5eff21c1df44ca4b5b4d9b7309
driving_d5.mp4 $LP $LP_OLD assets/examples/driving/d5.mp4 021af59d9e1d89c967699efd374e7acc77fd14c30b052abd98665de401d9e511
driving_d7.mp4 $LP $LP_OLD assets/examples/driving/d7.mp4 9e3ecc59a7285d52ca3666be6562e59ed45ad8afcef28d0f69a9be0e2850ed37
driving_d8.mp4 $LP $LP_OLD assets/examples/driving/d8.mp4 912a02dcffef9b1a6d6641c9a48e170490080c3715dc9f55d91e168483d27e6e
source_s13.mp4 $LP $LP_C assets/examples/source/s13.mp4 a6e4a80cc0eb856db5b4a46368fa0d7d9410b6a9276a8eefaa36a3da1c1b080a
source_s18.mp4 $LP $LP_C assets/examples/source/s18.mp4 47cc9cdc93adf36263c86367ddd2e7374e6a8a45ca2467e3e2ee86c18de4ca9c
source_s20.mp4 $LP $LP_C assets/examples/source/s20.mp4 90a45bf880e20b4250d04c71092e6920770d7f52725660c84561d5658cd17556
source_s29.mp4 $LP $LP_C assets/examples/source/s29.mp4 6e474b846e008461d4d8d02783817d071e9181fd4982be0af8f587be6f3a94dd
source_s32.mp4 $LP $LP_C assets/examples/source/s32.mp4 e4e1da5a4447fad117d426e0a0bf18b56acf1a3b942c51e3051280010b82c793
xportrait_driving.mp4 $XP $XP_C assets/driving_video.mp4 030c10c861e9fd4f6395eede5e9d4005dafc3fa56569e6a7167337b1b3675c08
latentsync_demo1.mp4 $LS $LS_C assets/demo1_video.mp4 ed2dd1e2001aa605c3f2d77672a8af4ed55e427a85c55d408adfc3d5076bc872
latentsync_demo2.mp4 $LS $LS_C assets/demo2_video.mp4 8c3f10288e0642e587a95c0040e6966f8f6b7e003c3a17b572f72472b896d8ff
latentsync_demo3.mp4 $LS $LS_C assets/demo3_video.mp4 cfa177b2a44f7809f606285c120e270d526caa50d708ec95e0f614d220970e0f
EOF
echo "fetch_clips: $(ls "$OUT"/*.mp4 | wc -l) clips in $OUT"
