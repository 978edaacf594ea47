"""android_bench: TFLite's benchmark_model on an Android phone through adb, or LiteRT's tool here.

Modules: `parse` (tool output -> BenchmarkResult), `matrix` (configurations, flags, rows),
`adb` (device flow), `local` (--local runs), `report` (results.csv/.json/.md), `run` (the
`python -m android_bench.run` entry point). No TensorFlow import anywhere in this package.
"""
