"""The lake: Parquet files partitioned by event date, the source of truth.

Layout (see ``workbench.lake.schema``)::

    <lake_url>/logs/date=YYYY-MM-DD/part-<writer>-<segment>.parquet

All file I/O goes through a ``pyarrow.fs.FileSystem`` resolved from the lake
URL, so a local directory and an object store are a configuration change apart.
"""
