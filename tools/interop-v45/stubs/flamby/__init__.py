"""Stand-in for FLamby: an empty `flamby.datasets` package, so Fed-BioMed finds no FLamby dataset."""
