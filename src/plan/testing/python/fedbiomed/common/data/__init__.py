"""Stand-in of fedbiomed/common/data (v4.5.0 _data_manager.py, _tabular_dataset.py, _medical_datasets.py)."""
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset


class TabularDataset(Dataset):
    def __init__(self, inputs, target):
        self.inputs = inputs.to_numpy() if isinstance(inputs, (pd.DataFrame, pd.Series)) else inputs
        self.target = target.to_numpy() if isinstance(target, (pd.DataFrame, pd.Series)) else target
        if len(self.inputs) != len(self.target):
            raise ValueError('length of inputs and target differ')
        self.inputs = torch.from_numpy(self.inputs).float()
        self.target = torch.from_numpy(self.target).float()

    def __len__(self):
        return len(self.inputs)

    def __getitem__(self, item):
        return self.inputs[item], self.target[item]


class DataManager:
    def __init__(self, dataset, target=None, **kwargs):
        self._dataset = dataset
        self._target = target
        self._loader_arguments = kwargs
        self.dataset = None

    def load(self, tp_type=None):
        if self._target is None and isinstance(self._dataset, Dataset):
            self.dataset = self._dataset
        elif isinstance(self._dataset, (pd.DataFrame, pd.Series, np.ndarray)) and \
                isinstance(self._target, (pd.DataFrame, pd.Series, np.ndarray)):
            self.dataset = TabularDataset(inputs=self._dataset, target=self._target)
        else:
            raise TypeError('invalid arguments for a torch DataManager')
        return self.dataset


class MetaTensor(torch.Tensor):
    """Stand-in for monai.data.MetaTensor: a tensor with the image's voxel-to-RAS `affine`."""


class MedicalFolderDataset(Dataset):
    def __init__(self, root, data_modalities='T1', transform=None, target_modalities='label',
                 target_transform=None, demographics_transform=None, tabular_file=None, index_col=None):
        self._root = Path(root)
        if not self._root.is_dir():
            raise ValueError('root folder does not exist: %s' % root)
        self.tabular_file = tabular_file
        self.index_col = index_col
        self._data_modalities = [data_modalities] if isinstance(data_modalities, str) else data_modalities
        self._target_modalities = [target_modalities] if isinstance(target_modalities, str) else target_modalities
        self._transform = self._reformat(transform, self._data_modalities)
        self._target_transform = self._reformat(target_transform, self._target_modalities)
        self._demographics_transform = demographics_transform if demographics_transform is not None else lambda x: {}

    @staticmethod
    def _reformat(transform, modalities):
        if transform is None:
            return None
        if isinstance(transform, dict):
            for modality, method in transform.items():
                if modality not in modalities:
                    raise ValueError('Modality `%s` is not present in %s' % (modality, modalities))
                if not callable(method):
                    raise ValueError('transform for `%s` should be callable' % modality)
            return transform
        if len(modalities) == 1:
            return {modalities[0]: transform}
        raise ValueError('transforms have to be a dictionary using the modality keys')

    def set_dataset_parameters(self, parameters):
        for key, value in parameters.items():
            if hasattr(self, key):
                setattr(self, key, value)
            else:
                raise ValueError("Trying to set non existing attribute '%s'" % key)

    def demographics(self):
        if self.tabular_file is None or self.index_col is None:
            return None
        frame = pd.read_csv(self.tabular_file, index_col=self.index_col, engine='python')
        return frame.loc[~frame.index.duplicated(keep='first')]

    def subject_folders(self):
        modalities = list(set(self._data_modalities + self._target_modalities))
        subjects = sorted(f.name for f in self._root.iterdir() if f.is_dir() and not f.name.startswith('.'))
        complete = [s for s in subjects if all((self._root / s / m).is_dir() for m in modalities)]
        demographics = self.demographics()
        if demographics is not None:
            complete = [s for s in complete if s in demographics.index]
        return [self._root / s for s in complete]

    def _load(self, folder, modalities):
        # Stand-in for MONAI LoadImage(ITKReader) + ToTensor on the modality's NIfTI file: a .nii(.gz) is read with
        # nibabel into the (i, j, k) voxel array and its RAS affine, which MONAI's MetaTensor carries as `.affine`;
        # a .npy volume has no affine (a reader that gives none).
        out = {}
        for m in modalities:
            nifti = sorted((folder / m).glob('*.nii*'))
            if nifti:
                import nibabel
                image = nibabel.load(str(nifti[0]))
                volume = torch.as_tensor(np.asarray(image.dataobj, dtype=np.float32)).as_subclass(MetaTensor)
                volume.affine = torch.as_tensor(image.affine, dtype=torch.float64)
                out[m] = volume
            else:
                out[m] = torch.as_tensor(np.load(sorted((folder / m).glob('*.npy'))[0]))
        return out

    def __len__(self):
        return len(self.subject_folders())

    def __getitem__(self, item):
        folder = self.subject_folders()[item]
        data = self._load(folder, self._data_modalities)
        targets = self._load(folder, self._target_modalities)
        demographics = self.demographics()
        if demographics is not None:
            row = demographics.loc[folder.name].to_dict()
            demographics = {k: v for k, v in row.items() if isinstance(v, (int, float, str, bool))}
        else:
            demographics = {}
        if self._transform is not None:
            for modality, transform in self._transform.items():
                data[modality] = transform(data[modality])
        demographics = self._demographics_transform(demographics)
        if isinstance(demographics, dict) and len(demographics) == 0:
            demographics = torch.empty(0)
        else:
            demographics = torch.as_tensor(demographics)
        if self._target_transform is not None:
            for modality, transform in self._target_transform.items():
                targets[modality] = transform(targets[modality])
        return (data, demographics), targets
