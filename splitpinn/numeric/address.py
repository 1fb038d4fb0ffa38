"""How the compiled kernels call a model's functions: through their addresses, on pointers.

A model's functions are numba ``cfunc``\\ s (:mod:`splitpinn.numeric.compiled`), compiled apart
from the kernels, which take their addresses as integers: every model's are typed alike, so
the kernels compile once for all models.  :func:`call` calls one through its address and
:func:`address` passes an array as the pointer to its data: a call then costs what a direct
call does (numba's first-class functions cost ~30 ns of argument handling per call on arrays,
as much as an HH gate's rate functions, and ~60 µs of typing per kernel call from Python).
Imports numba: only the compiled kernels' module uses it.
"""

from llvmlite import ir
from numba import types
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload


@intrinsic
def address(typingctx, array):
    """The pointer to a C-contiguous float array's first element (a strided view would be
    read as if contiguous: refused when the kernel is typed)."""
    if not (isinstance(array, types.Array) and array.layout == "C"
            and array.dtype == types.float64):
        raise TypingError(f"address() takes a C-contiguous float64 array, not {array}")

    def codegen(context, builder, signature, args):
        return context.make_array(signature.args[0])(context, builder, args[0]).data

    return types.CPointer(types.float64)(array), codegen


def call(function, *args):
    """``function(*args)``: compiled, ``function`` is the address of a model's function
    (which returns a float) and the call goes through it."""
    return function(*args)


@intrinsic
def _through(typingctx, function, arguments):
    """The C call of the function at the address ``function`` on the tuple ``arguments``."""
    if function != types.int64:
        raise TypingError(f"call() takes a function's address (int64), not {function}")

    def codegen(context, builder, signature, values):
        items = [builder.extract_value(values[1], i) for i in range(len(arguments))]
        kind = ir.FunctionType(ir.DoubleType(), [context.get_value_type(a) for a in arguments])
        return builder.call(builder.inttoptr(values[0], kind.as_pointer()), items)

    return types.float64(function, arguments), codegen


@overload(call)
def _call(function, *args):
    def compiled(function, *args):
        return _through(function, args)

    return compiled
