"""Object and annotation commands: put, get, ls, rm, cp, annotate, annotations, unannotate, mb."""
