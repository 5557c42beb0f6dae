"""``python -m prophecy_jupyter.kernel -f CONNECTION_FILE``: the Prophecy bridge kernel."""

from ipykernel.kernelapp import IPKernelApp

from prophecy_jupyter.kernel.bridge import ProphecyKernel

IPKernelApp.launch_instance(kernel_class=ProphecyKernel)
