"""Tests of search/: study files, the space, trials, TensorBoard, storages, workers."""
