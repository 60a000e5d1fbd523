"""Stand-in for MONAI: only the names Fed-BioMed v4.5.0 imports at module level (medical-folder and FLamby
datasets). Building any of them raises."""
