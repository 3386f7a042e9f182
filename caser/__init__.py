"""Caser: convolutional sequence embedding recommender (Tang & Wang, WSDM 2018).

The package trains and evaluates one configuration; it knows nothing of Optuna.
    data (readers, filters, splits) -> windows -> model -> metrics -> Lightning module
"""
