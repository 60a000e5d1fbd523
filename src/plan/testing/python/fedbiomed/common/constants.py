"""Stand-in of fedbiomed/common/constants.py (v4.5.0): the enums plans import."""
from enum import Enum


class ProcessTypes(Enum):
    DATA_LOADER = 0
    PARAMS = 1


class TrainingPlans(str, Enum):
    TorchTrainingPlan = 'TorchTrainingPlan'
    SkLearnTrainingPlan = 'SkLearnTrainingPlan'
