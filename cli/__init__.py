"""The ``detection-debugger`` command line: ``main`` (parser and dispatch), ``common``
(errors, dataset loading, output) and one module per command group. A front end: it calls
the layers below and never the App's operators or panels."""
