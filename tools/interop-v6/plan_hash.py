"""The hash a real Fed-BioMed v6.3.3 node computes for a training plan source: its own
TrainingPlanSecurityManager._create_hash (python-minifier with Fed-BioMed's options, then SHA256), called on the
real install. Writes the minified text next to OUT_PREFIX and prints PLAN_HASH <hex> <algorithm>.

    python3 plan_hash.py PLAN.py OUT_PREFIX
"""
import sys
import types

from python_minifier import minify  # noqa: F401  (the real minifier must be importable)
from fedbiomed.node.training_plan_security_manager import TrainingPlanSecurityManager

source = open(sys.argv[1]).read()
# _create_hash only reads self._hashing: the manager's database is not needed for it.
manager = types.SimpleNamespace(_hashing='SHA256')
digest, algorithm, _ = TrainingPlanSecurityManager._create_hash(manager, source, from_string=True)
mini = minify(source, remove_annotations=False, combine_imports=False, remove_pass=False, hoist_literals=False,
              remove_object_base=True, rename_locals=False)
with open(sys.argv[2] + '.minified.txt', 'w') as f:
    f.write(mini)
print('PLAN_HASH', digest, algorithm)
