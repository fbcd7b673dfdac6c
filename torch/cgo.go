package torch

/*
#cgo CFLAGS: -I${SRCDIR}/shim
#cgo LDFLAGS: -L${SRCDIR}/../build -ledema_torch -Wl,-rpath,${SRCDIR}/../build
#include <stdlib.h>
#include "edema_torch.h"
*/
import "C"
