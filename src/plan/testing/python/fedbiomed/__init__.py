"""Stand-in of the Fed-BioMed v4.5.0 package for fedbiomed-ts tests (see ../README.md)."""
