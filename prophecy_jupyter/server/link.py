"""How kernels started by the server reach its API: two environment variables and a header."""

SERVER_URL_ENV = "PROPHECY_JUPYTER_SERVER_URL"
KERNEL_SECRET_ENV = "PROPHECY_JUPYTER_KERNEL_SECRET"
SERVER_CA_ENV = "PROPHECY_JUPYTER_SERVER_CA"
KERNEL_HEADER = "X-Prophecy-Kernel"
API_PREFIX = "/prophecy-jupyter/api/v1"
