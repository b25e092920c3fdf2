"""Checks of the settings that live outside the job's schemas, run by the precheck before any folder
exists: the environment, the sweeper's and the launcher's own options, the loggers' servers and the
dataset files. Each mistake is one ConfigError (key, value, what is valid).

    env.py       TRAINLAB_FIGURES, TRAINLAB_CONFIG_PATH
    sweeper.py   grid/random (trainlab, basic) and Optuna options, the objective, the search space
    launcher.py  basic, joblib, submitit, vectorized: keys and values
    loggers.py   MLflow's tracking URI and server, W&B's mode/key/project
    datasets.py  a real-data dataset's files, decided once for the whole sweep
    urls.py      database URLs (Optuna storage, MLflow's SQL store) and server reachability
"""
