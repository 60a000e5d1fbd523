"""Stand-in of fedbiomed.node.environ (v4.5.0): the node's environ singleton; only VAR_DIR is used by generated
plans. Tests point it at a temporary directory with FBTS_TEST_VAR_DIR."""
import os
import tempfile

environ = {'VAR_DIR': os.environ.get('FBTS_TEST_VAR_DIR') or os.path.join(tempfile.gettempdir(), 'fbts-standin-var')}
