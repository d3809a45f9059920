"""The density pyfunc as MLflow 3 "model from code": MLflow runs this file to build the model
(no pickled object is stored), then `load_context` reads the model's own artifact."""

from mlflow.models import set_model

from pml_ops.density.pyfunc import DensityPyfunc

set_model(DensityPyfunc())
