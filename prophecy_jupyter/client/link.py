"""How kernels started by the server reach its API: environment variables set for the kernel
alone (never in the server's own environment) and one header."""

SERVER_URL_ENV = "PROPHECY_JUPYTER_SERVER_URL"
KERNEL_TOKEN_ENV = "PROPHECY_JUPYTER_KERNEL_TOKEN"
SERVER_CA_ENV = "PROPHECY_JUPYTER_SERVER_CA"
KERNEL_HEADER = "X-Prophecy-Kernel"
API_PREFIX = "/prophecy-jupyter/api/v1"
