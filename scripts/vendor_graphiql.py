"""Copy strawberry's GraphiQL page, and the files it loads from unpkg, into
graph/transport/static/ide, the page rewritten to load them from this server
(`graph.transport.ide`), so GraphiQL works without internet access.

Run after upgrading strawberry-graphql (its page pins GraphiQL's version):

    .venv/bin/python scripts/vendor_graphiql.py

Each package comes from the npm registry (`npm pack <package>@<version>`); each file is
checked against the page's own Subresource Integrity hash (sha384) before it is kept,
so the vendored files are exactly what the page would have loaded from the CDN.
The page is kept as strawberry ships it (CDN URLs made local); PostAssist's title, logo
and example operation are put in when it is served (`graph.transport.ide.brand`), with
the safety edits (`graph.transport.ide.harden`: no persisted headers, nothing read from
the URL), and both are checked to fit the new page before anything is replaced.
Raises `SystemExit` when npm fails, a hash does not match, or the page cannot be
branded or hardened.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graph.transport.ide import (  # noqa: E402
    IDE_DIR,
    PAGE,
    brand,
    cdn_assets,
    harden,
    localise,
    upstream_html,
)


def sri(data: bytes) -> str:
    """The `sha384-<base64>` Subresource Integrity value of `data`."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def main() -> None:
    """Vendor every asset of the page into IDE_DIR (replacing what was there)."""
    html = upstream_html()
    try:
        harden(brand(localise(html)))
    except ValueError as exc:
        raise SystemExit(f"{exc}: update graph.transport.ide's edits for this page") from None
    assets = cdn_assets(html)
    shutil.rmtree(IDE_DIR, ignore_errors=True)
    sources = ["Vendored by scripts/vendor_graphiql.py from the npm registry:"]
    with tempfile.TemporaryDirectory() as tmp:
        for asset in assets:
            packed = subprocess.run(
                ["npm", "pack", "--silent", asset.package_spec],
                cwd=tmp, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if packed.returncode != 0:
                raise SystemExit(f"npm pack {asset.package_spec} failed: {packed.stderr}")
            with tarfile.open(Path(tmp) / packed.stdout.strip().splitlines()[-1]) as archive:
                member = archive.extractfile(f"package/{asset.file}")
                manifest = archive.extractfile("package/package.json")
                assert member is not None and manifest is not None, asset
                data = member.read()
                license_ = json.load(manifest).get("license", "see the package")
            if asset.integrity and sri(data) != asset.integrity:
                raise SystemExit(f"{asset.path}: sha384 differs from the page's integrity")
            target = IDE_DIR / asset.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            print(f"{asset.path}  {len(data):>9,} bytes  {asset.integrity[:20]}...")
            sources.append(f"{asset.path}  (npm {asset.package_spec}, license {license_})")
    (IDE_DIR / PAGE).write_text(localise(html), encoding="utf-8")
    sources.append(f"{PAGE}: strawberry-graphql's GraphiQL page, loading the files above")
    (IDE_DIR / "SOURCES.txt").write_text("\n".join(sources) + "\n")


if __name__ == "__main__":
    main()
