// ibmb: umbrella header for the CPU library (never includes cuda/).
#pragma once

#include "ibmb/core/error.hpp"
#include "ibmb/core/file.hpp"
#include "ibmb/core/parallel.hpp"
#include "ibmb/core/progress.hpp"
#include "ibmb/core/version.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/graph/csr.hpp"
#include "ibmb/graph/dataset.hpp"
#include "ibmb/graph/normalize.hpp"
