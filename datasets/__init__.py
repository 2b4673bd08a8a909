"""Everything that touches FiftyOne datasets: import and export, bulk reads and writes,
evaluation runs, slices, comparisons, views, label issues and their review, the plugin's
records and locks in a dataset, the project's database, and the one module that uses
FiftyOne's private API (``fiftyone_private``). Built on ``evaluation`` and ``formats``."""
