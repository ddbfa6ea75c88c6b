"""The pipeline's single stage table and what is derived from it (plain data, no Prefect, no DVC imports).

* :mod:`sem_pipeline.paths` — every path the pipeline reads or writes, derived from the config in one place.
* :mod:`sem_pipeline.stages` — the stage table: command, data dependencies, code modules, config sections, outputs.
* :mod:`sem_pipeline.trace` — the code a stage runs, found by tracing the imports of its command.
* :mod:`sem_pipeline.keys` — the stage cache key both routes use (Prefect cache key, DVC's deps/params).
* :mod:`sem_pipeline.dvc_yaml` — ``dvc.yaml`` generated from the table.
* :mod:`sem_pipeline.run` — run one stage (the command both ``dvc repro`` and the Prefect tasks execute).
"""
