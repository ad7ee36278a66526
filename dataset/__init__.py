"""The ratings dataset on disk: its layout, its checks, installing, the store, loading, import.

Read in this order: `layout` (what the files look like), `checks` (reading them
back, refusing anything a hand edit broke), `install` (the writer lock, staging,
archiving), `store` (the builder's crash-safe batches), `loading` (what the model
reads), `importer` (a published dataset instead of a crawl).
`load_save_and_translate_data` is the public face that gathers their names.
"""
