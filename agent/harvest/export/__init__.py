"""Dataset export: stream the dialogue log (one read snapshot) into training formats.

One module per format (:mod:`.sft`, :mod:`.dpo`, :mod:`.kto`, :mod:`.sharegpt`, :mod:`.parquet_fmt`,
:mod:`.speech`), shared steps beside them: :mod:`.snapshot` (the read transaction), :mod:`.query`
(turns streamed by conversation), :mod:`.exchanges` (curation and filters applied), :mod:`.split`,
:mod:`.dedupe`, :mod:`.pii`, :mod:`.card` and :mod:`.manifest`; :mod:`.run` ties them together.
Heavy libraries (pyarrow, datasketch, soundfile) are imported inside the functions that need them.
"""
