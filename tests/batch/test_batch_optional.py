"""Ray is an optional extra: the plain CLI and the inference path never import it."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_plain_inference_leaves_ray_out(films, tmp_path):
    film = sorted(films.iterdir())[0]
    script = textwrap.dedent(f"""
        import sys
        import vertxnet.cli.infer as infer
        assert infer.main([{str(film)!r}, "-o", {str(tmp_path)!r}, "-q"]) == 0
        heavy = sorted(m for m in ("ray", "ray.data", "pyarrow", "vertxnet.batch") if m in sys.modules)
        print(heavy)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
    assert (tmp_path / f"{film.stem}.json").is_file()
