"""Renderer with 1 and 2 interpreters, alternated 3 times: the 14 samples one `render()` at a
time, and as one `render_many` (docs/python_api.md).

    python docs/measure/renderer_interpreters.py [../shared/raw_samples]
"""
import glob, os, sys, time
import deepisp_tf
from deepisp_tf.runtime import models
folder = sys.argv[1] if len(sys.argv) > 1 else "../shared/raw_samples"
files = sorted(f for f in glob.glob(os.path.join(folder, "*")) if not f.endswith((".tsv", ".md")))
model = models.default_model_path(threads=1)
renderers = {n: deepisp_tf.Renderer(model, interpreters=n) for n in (1, 2)}
for renderer in renderers.values():
    list(renderer.render_many(files[:2]))  # warm-up
one, many = dict.fromkeys(renderers, 0.0), dict.fromkeys(renderers, 0.0)
for _ in range(3):  # alternated
    for n, renderer in renderers.items():
        start = time.perf_counter()
        for path in files:
            renderer.render(path)
        one[n] += (time.perf_counter() - start) / 3
        start = time.perf_counter()
        list(renderer.render_many(files))
        many[n] += (time.perf_counter() - start) / 3
print(f"render() per file: {one[1]:.2f} s (1 interpreter), {one[2]:.2f} s (2); "
      f"render_many: {many[1]:.2f} s, {many[2]:.2f} s; {len(files)} files")
