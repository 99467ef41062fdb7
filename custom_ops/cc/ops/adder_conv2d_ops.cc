// Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
// Op definitions for the adder convolution and its AdderNet gradient ops.
//
// Layouts: input NHWC [N, H, W, C], filter [KH, KW, C, O], output NHWC
// [N, OH, OW, O]. Y = -sum_{i,j,c} |Xpad - F|, a zero-padded position
// contributing |F|.

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace addernet {
namespace {

using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

// Checks the attrs and returns (via out-params) strides and explicit pads.
absl::Status ReadGeometryAttrs(InferenceContext* c, std::vector<int>* strides,
                               std::string* padding,
                               std::vector<int>* explicit_paddings) {
  TF_RETURN_IF_ERROR(c->GetAttr("strides", strides));
  TF_RETURN_IF_ERROR(c->GetAttr("padding", padding));
  TF_RETURN_IF_ERROR(c->GetAttr("explicit_paddings", explicit_paddings));
  if (strides->size() != 2 || (*strides)[0] <= 0 || (*strides)[1] <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "`strides` must be two positive ints [stride_h, stride_w], got [",
        absl::StrJoin(*strides, ", "), "]"));
  }
  if (*padding == "EXPLICIT") {
    if (explicit_paddings->size() != 4) {
      return absl::InvalidArgumentError(absl::StrCat(
          "`explicit_paddings` must be [top, bottom, left, right], got [",
          absl::StrJoin(*explicit_paddings, ", "), "]"));
    }
    for (int p : *explicit_paddings) {
      if (p < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "`explicit_paddings` must be non-negative, got [",
            absl::StrJoin(*explicit_paddings, ", "), "]"));
      }
    }
  } else if (!explicit_paddings->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "`explicit_paddings` must be empty unless `padding` is EXPLICIT, got [",
        absl::StrJoin(*explicit_paddings, ", "), "]"));
  }
  return absl::OkStatus();
}

// Output extent of one spatial dimension, or -1 when `size` is unknown.
absl::Status OutputSize(const char* dim_name, int64_t size, int64_t kernel,
                        int stride, const std::string& padding, int pad_before,
                        int pad_after, int64_t* out) {
  if (size < 0 || kernel < 0) {
    *out = -1;
    return absl::OkStatus();
  }
  if (padding == "SAME") {
    *out = (size + stride - 1) / stride;
    return absl::OkStatus();
  }
  const int64_t padded = size + pad_before + pad_after;
  if (kernel > padded) {
    return absl::InvalidArgumentError(absl::StrCat(
        "`filters` kernel ", dim_name, " ", kernel,
        " is larger than the padded `input` ", dim_name, " ", padded));
  }
  *out = (padded - kernel) / stride + 1;
  return absl::OkStatus();
}

absl::Status AdderConv2DShape(InferenceContext* c) {
  ShapeHandle input, filter;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &input));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 4, &filter));
  std::vector<int> strides, pads;
  std::string padding;
  TF_RETURN_IF_ERROR(ReadGeometryAttrs(c, &strides, &padding, &pads));
  if (pads.empty()) pads = {0, 0, 0, 0};

  DimensionHandle unused;
  TF_RETURN_IF_ERROR(c->Merge(c->Dim(input, 3), c->Dim(filter, 2), &unused));

  auto value = [c](ShapeHandle s, int d) {
    return c->ValueKnown(c->Dim(s, d)) ? c->Value(c->Dim(s, d)) : int64_t{-1};
  };
  int64_t oh, ow;
  TF_RETURN_IF_ERROR(OutputSize("height", value(input, 1), value(filter, 0),
                                strides[0], padding, pads[0], pads[1], &oh));
  TF_RETURN_IF_ERROR(OutputSize("width", value(input, 2), value(filter, 1),
                                strides[1], padding, pads[2], pads[3], &ow));
  c->set_output(0, c->MakeShape({c->Dim(input, 0),
                                 oh < 0 ? c->UnknownDim() : c->MakeDim(oh),
                                 ow < 0 ? c->UnknownDim() : c->MakeDim(ow),
                                 c->Dim(filter, 3)}));
  return absl::OkStatus();
}

// Gradient ops return a tensor shaped like input `index`.
absl::Status BackpropShape(InferenceContext* c, int index) {
  ShapeHandle unused;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &unused));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 4, &unused));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 4, &unused));
  std::vector<int> strides, pads;
  std::string padding;
  TF_RETURN_IF_ERROR(ReadGeometryAttrs(c, &strides, &padding, &pads));
  c->set_output(0, c->input(index));
  return absl::OkStatus();
}

}  // namespace

#define ADDER_CONV2D_ATTRS                          \
  Attr("T: {float, double}")                        \
      .Attr("strides: list(int)")                   \
      .Attr("padding: {'SAME', 'VALID', 'EXPLICIT'}") \
      .Attr("explicit_paddings: list(int) = []")

REGISTER_OP("Addernet>AdderConv2D")
    .Input("input: T")
    .Input("filter: T")
    .Output("output: T")
    .ADDER_CONV2D_ATTRS
    .Attr("formulation: {'exact', 'max_identity'} = 'exact'")
    .SetShapeFn(AdderConv2DShape)
    .Doc(R"doc(
Adder convolution: output[n, oh, ow, o] = -sum_{i,j,c} |input_pad - filter|.

input: [N, H, W, C].
filter: [KH, KW, C, O].
output: [N, OH, OW, O].
strides: [stride_h, stride_w].
explicit_paddings: [top, bottom, left, right] when padding is EXPLICIT.
formulation: exact sums |x - f|; max_identity sums 2 max(x, f) - x - f, the
  same value rounded differently, faster on CPUs (the GPU kernels compute the
  exact sum either way).
)doc");

REGISTER_OP("Addernet>AdderConv2DBackpropInput")
    .Input("input: T")
    .Input("filter: T")
    .Input("out_backprop: T")
    .Output("input_backprop: T")
    .ADDER_CONV2D_ATTRS
    .SetShapeFn([](InferenceContext* c) { return BackpropShape(c, 0); })
    .Doc(R"doc(
AdderNet input gradient: sum clamp(filter - input, -1, 1) * out_backprop.
)doc");

REGISTER_OP("Addernet>AdderConv2DBackpropFilter")
    .Input("input: T")
    .Input("filter: T")
    .Input("out_backprop: T")
    .Output("filter_backprop: T")
    .ADDER_CONV2D_ATTRS
    .SetShapeFn([](InferenceContext* c) { return BackpropShape(c, 1); })
    .Doc(R"doc(
AdderNet full-precision filter gradient: sum (input_pad - filter) * out_backprop.
)doc");

}  // namespace addernet
