"""detection-debugger: find why an object detector fails, by looking at the data.

This folder is both the FiftyOne plugin ``@datacentric/detection-debugger`` and the Python
package ``detection_debugger``. The evaluation engine (``detection_debugger.evaluation``) is
pure numpy; FiftyOne is imported only when FiftyOne loads the plugin and calls ``register``.
"""


def register(p):
    """Registers every operator and panel of the plugin (all listed in ``fiftyone.yml``)."""
    from .operators import OPERATORS
    from .panels import PANELS

    for component in (*OPERATORS, *PANELS):
        p.register(component)
