"""Stand-in of fedbiomed/common/training_plans (v4.5.0 _torchnn.py + _base_training_plan.py)."""
import inspect
from collections import OrderedDict

import torch

from fedbiomed.common.constants import TrainingPlans


def get_method_spec(method):
    """fedbiomed.common.utils.get_method_spec: the parameters of a bound method."""
    return {name: param for name, param in inspect.signature(method).parameters.items()}


class TorchTrainingPlan:
    def __init__(self):
        self._dependencies = []
        self.dataset_path = None
        self.pre_processes = OrderedDict()
        self.training_data_loader = None
        self.testing_data_loader = None
        self._model_args = None
        self._optimizer_args = None
        self._training_args = None
        self._model = None
        self._optimizer = None
        self.add_dependency([
            "import torch",
            "import torch.nn as nn",
            "import torch.nn.functional as F",
            "from fedbiomed.common.training_plans import TorchTrainingPlan",
            "from fedbiomed.common.data import DataManager",
            "from fedbiomed.common.constants import ProcessTypes",
            "from torch.utils.data import DataLoader",
            "from torchvision import datasets, transforms",
        ])

    def add_dependency(self, dep):
        for val in dep:
            if val not in self._dependencies:
                self._dependencies.append(val)

    def init_dependencies(self):
        return []

    def configure_dependencies(self):
        if len(get_method_spec(self.init_dependencies)) > 0:
            raise TypeError('init_dependencies should not take any argument')
        dependencies = self.init_dependencies()
        if not isinstance(dependencies, (list, tuple)):
            raise TypeError('expected dependencies as a list or tuple of str')
        self.add_dependency(dependencies)

    def post_init(self, model_args, training_args, aggregator_args=None):
        # training_args: a dict with 'optimizer_args' (TrainingArgs.optimizer_arguments()) and 'random_seed'.
        self._model_args = model_args
        self._optimizer_args = training_args.get('optimizer_args') or {}
        self._training_args = training_args
        seed = training_args.get('random_seed')
        torch.manual_seed(seed if seed is not None else torch.seed())
        self.configure_dependencies()
        spec = get_method_spec(self.init_model)
        if not spec:
            model = self.init_model()
        elif len(spec) == 1:
            model = self.init_model(self._model_args)
        else:
            raise TypeError('init_model has more than one argument')
        self._model = model
        spec = get_method_spec(self.init_optimizer)
        if not spec:
            optimizer = self.init_optimizer()
        elif len(spec) == 1:
            optimizer = self.init_optimizer(self._optimizer_args)
        else:
            raise TypeError('init_optimizer has more than one argument')
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError('init_optimizer must return a torch optimizer here, got %r' % type(optimizer))
        self._optimizer = optimizer

    def init_optimizer(self):
        self._optimizer = torch.optim.Adam(self._model.parameters(), **self._optimizer_args)
        return self._optimizer

    def model(self):
        return self._model

    def type(self):
        return TrainingPlans.TorchTrainingPlan

    def set_dataset_path(self, dataset_path):
        self.dataset_path = dataset_path

    def set_model_params(self, params):
        # TorchModel.set_weights
        self._model.load_state_dict(params, strict=False)

    def after_training_params(self, flatten=False):
        # share_persistent_buffers (default True): the whole state_dict; then the plan's optional postprocess
        params = dict(self._model.state_dict())
        if hasattr(self, 'postprocess'):
            params = self.postprocess(self._model.state_dict())
        return params

    def optimizer_args(self):
        return self._optimizer_args

    def _train_over_batch(self, data, target):
        self._optimizer.zero_grad()
        loss = self.training_step(data, target)
        loss.backward()
        self._optimizer.step()
        return loss

    def testing_batch(self, data, target):
        """The per-batch part of testing_routine: torch.no_grad(), testing_step, then train mode restored."""
        try:
            with torch.no_grad():
                return self.testing_step(data, target)
        finally:
            self.model().train()
