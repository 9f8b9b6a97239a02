"""The benchmark: this pipeline against DeepFace's own loop, side by side, on the same photos.

Not part of the product: it is not installed with `faces` (pyproject.toml lists only the
``faces`` packages) and runs from the repository root, ``python -m bench FOLDER`` (`make bench`).
It imports the product (``faces.*``); nothing in the product imports it.

- ``bench.run``        the whole run, every figure in one dict (``run_bench``)
- ``bench.peer``       DeepFace.analyze's loop in a fresh process, cold and warm
- ``bench.pipeline``   a whole `faces run` cold, and a running stack warm
- ``bench.stages``     each stage alone on decoded photos; age/gender batching and precision
- ``bench.transport``  one hop of a real event through a fresh redis-server (``bench.hop``)
- ``bench.throughput`` throughput and growth (issue 16): ``floor`` (CPU per image per step),
                       ``plain`` (a process pool over faces.analyze), ``steady`` (a running
                       stack fed N images), ``growth`` (memory and speed by queue size),
                       ``workload`` (distinct copies of the photos), ``report_throughput``;
                       recognition off and on (``embedding``: the embed step's model work)
- ``bench.machine``    the machine's facts (CPU kind: AVX-512 with bfloat16 or AVX2 only) and
                       how busy others kept it
- ``bench.report``     ratios, targets and the tables
- ``bench.synthetic``  random weight files with DeepFace's layout (also used by the tests)

Unlike the product, whose Redis calls all live in ``faces.streams``, the bench makes a few
of its own (bench streams, server version): it measures the product and is not part of it.
"""
