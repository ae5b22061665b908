// oneDNN's fused RNN primitives (forward_training / forward_inference and backward) for one
// recurrent layer, one or both directions, float32 on the CPU, registered as torch operators
// rnnlab_onednn::forward and rnnlab_onednn::backward.
//
// Layouts (L = 1 layer, D = 1 or 2 directions, G gate blocks, H hidden, I input features):
//   input (T, B, I) and output (T, B, D*H)              oneDNN `tnc`
//   hidden in/out (D, B, H)                             `ldnc`
//   forward weights (D, I, G, H) and (D, H, G, H)       `ldigo`
//   backward weights (D, G, H, I) and (D, G, H, H)      `ldgoi` (torch's own (G*H, in) layout)
//   bias (D, Gb, H)                                     `ldgo`  (Gb = 4 for lbr_gru, else G)
// Gate order and bias sums are oneDNN's; the Python side (kernels/onednn.py) converts torch's.
// Weight, bias gradients come back in `ldigo` / `ldgo`.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <list>
#include <mutex>
#include <tuple>
#include <unordered_map>

namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;

// Cell codes shared with kernels/onednn.py.
enum Cell : int64_t { RNN_TANH = 0, RNN_RELU = 1, GRU = 2, LECTURE_GRU = 3, LSTM = 4 };

int64_t gate_blocks(int64_t cell) {
  switch (cell) {
    case RNN_TANH:
    case RNN_RELU:
      return 1;
    case GRU:
    case LECTURE_GRU:
      return 3;
    case LSTM:
      return 4;
  }
  TORCH_CHECK(false, "rnnlab_onednn: unknown cell code ", cell);
}

int64_t bias_blocks(int64_t cell) { return cell == GRU ? 4 : gate_blocks(cell); }

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

struct Shape {
  int64_t cell, directions, steps, batch, input, hidden;
  bool training;
  bool operator==(const Shape& o) const {
    return std::tie(cell, directions, steps, batch, input, hidden, training) ==
           std::tie(o.cell, o.directions, o.steps, o.batch, o.input, o.hidden, o.training);
  }
};

struct ShapeHash {
  size_t operator()(const Shape& s) const {
    size_t h = 0;
    for (int64_t v : {s.cell, s.directions, s.steps, s.batch, s.input, s.hidden,
                      static_cast<int64_t>(s.training)}) {
      h = h * 1000003u ^ std::hash<int64_t>()(v);
    }
    return h;
  }
};

// The memory descriptors of one shape.
struct Descs {
  // weights_* / bwd_weights_*: the layouts the caller passes (ldigo / ldgoi); any_weights_*: let
  // the primitive choose (a packed GEMM layout is much faster for large layers).
  memory::desc src_layer, src_iter, src_iter_c, weights_layer, weights_iter, bias, dst_layer,
      dst_iter, dst_iter_c, bwd_weights_layer, bwd_weights_iter, any_weights_layer,
      any_weights_iter;

  explicit Descs(const Shape& s) {
    const auto f32 = memory::data_type::f32;
    const int64_t G = gate_blocks(s.cell), D = s.directions;
    src_layer = memory::desc({s.steps, s.batch, s.input}, f32, tag::tnc);
    src_iter = memory::desc({1, D, s.batch, s.hidden}, f32, tag::ldnc);
    weights_layer = memory::desc({1, D, s.input, G, s.hidden}, f32, tag::ldigo);
    weights_iter = memory::desc({1, D, s.hidden, G, s.hidden}, f32, tag::ldigo);
    bwd_weights_layer = memory::desc({1, D, s.input, G, s.hidden}, f32, tag::ldgoi);
    bwd_weights_iter = memory::desc({1, D, s.hidden, G, s.hidden}, f32, tag::ldgoi);
    any_weights_layer = memory::desc({1, D, s.input, G, s.hidden}, f32, tag::any);
    any_weights_iter = memory::desc({1, D, s.hidden, G, s.hidden}, f32, tag::any);
    bias = memory::desc({1, D, bias_blocks(s.cell), s.hidden}, f32, tag::ldgo);
    dst_layer = memory::desc({s.steps, s.batch, D * s.hidden}, f32, tag::tnc);
    dst_iter = memory::desc({1, D, s.batch, s.hidden}, f32, tag::ldnc);
    if (s.cell == LSTM) {
      src_iter_c = src_iter;
      dst_iter_c = dst_iter;
    }
  }
};

dnnl::rnn_direction direction_of(int64_t directions) {
  return directions == 2 ? dnnl::rnn_direction::bidirectional_concat
                         : dnnl::rnn_direction::unidirectional_left2right;
}

dnnl::algorithm activation_of(int64_t cell) {
  return cell == RNN_RELU ? dnnl::algorithm::eltwise_relu : dnnl::algorithm::eltwise_tanh;
}

// Forward and (for training shapes, built on first use) backward primitives of one shape.
struct Primitives {
  Shape shape;
  Descs d;
  dnnl::primitive_desc forward_pd;
  dnnl::primitive forward;
  dnnl::primitive_desc backward_pd;
  dnnl::primitive backward;

  explicit Primitives(const Shape& s) : shape(s), d(s) {
    auto& engine = cpu_engine();
    const auto prop = s.training ? dnnl::prop_kind::forward_training
                                 : dnnl::prop_kind::forward_inference;
    const auto dir = direction_of(s.directions);
    switch (s.cell) {
      case RNN_TANH:
      case RNN_RELU: {
        auto pd = dnnl::vanilla_rnn_forward::primitive_desc(
            engine, prop, activation_of(s.cell), dir, d.src_layer, d.src_iter,
            d.any_weights_layer, d.any_weights_iter, d.bias, d.dst_layer, d.dst_iter);
        forward = dnnl::vanilla_rnn_forward(pd);
        forward_pd = pd;
        break;
      }
      case GRU:
        build_gru_forward<dnnl::lbr_gru_forward>(prop, dir);
        break;
      case LECTURE_GRU:
        build_gru_forward<dnnl::gru_forward>(prop, dir);
        break;
      case LSTM: {
        auto pd = dnnl::lstm_forward::primitive_desc(
            engine, prop, dir, d.src_layer, d.src_iter, d.src_iter_c, d.any_weights_layer,
            d.any_weights_iter, d.bias, d.dst_layer, d.dst_iter, d.dst_iter_c);
        forward = dnnl::lstm_forward(pd);
        forward_pd = pd;
        break;
      }
      default:
        TORCH_CHECK(false, "rnnlab_onednn: unknown cell code ", s.cell);
    }
  }

  // lbr_gru (torch's GRU) and vanilla_gru (the lecture's) take the same arguments.
  template <typename Forward>
  void build_gru_forward(dnnl::prop_kind prop, dnnl::rnn_direction dir) {
    typename Forward::primitive_desc pd(cpu_engine(), prop, dir, d.src_layer, d.src_iter,
                                        d.any_weights_layer, d.any_weights_iter, d.bias,
                                        d.dst_layer, d.dst_iter);
    forward = Forward(pd);
    forward_pd = pd;
  }

  template <typename Forward, typename Backward>
  void build_gru_backward(dnnl::rnn_direction dir) {
    typename Forward::primitive_desc hint(forward_pd.get());
    typename Backward::primitive_desc pd(
        cpu_engine(), dnnl::prop_kind::backward, dir, d.src_layer, d.src_iter,
        d.any_weights_layer, d.any_weights_iter, d.bias, d.dst_layer, d.dst_iter, d.src_layer,
        d.src_iter, d.weights_layer, d.weights_iter, d.bias, d.dst_layer, d.dst_iter, hint);
    backward = Backward(pd);
    backward_pd = pd;
  }

  void build_backward() {
    if (backward_pd) return;
    auto& engine = cpu_engine();
    const auto prop = dnnl::prop_kind::backward;
    const auto dir = direction_of(shape.directions);
    // Gradients have the layouts of the values they belong to; weight gradients come in ldigo.
    switch (shape.cell) {
      case RNN_TANH:
      case RNN_RELU: {
        auto hint = dnnl::vanilla_rnn_forward::primitive_desc(forward_pd.get());
        auto pd = dnnl::vanilla_rnn_backward::primitive_desc(
            engine, prop, activation_of(shape.cell), dir, d.src_layer, d.src_iter,
            d.any_weights_layer, d.any_weights_iter, d.bias, d.dst_layer, d.dst_iter,
            d.src_layer, d.src_iter, d.weights_layer, d.weights_iter, d.bias, d.dst_layer,
            d.dst_iter, hint);
        backward = dnnl::vanilla_rnn_backward(pd);
        backward_pd = pd;
        break;
      }
      case GRU:
        build_gru_backward<dnnl::lbr_gru_forward, dnnl::lbr_gru_backward>(dir);
        break;
      case LECTURE_GRU:
        build_gru_backward<dnnl::gru_forward, dnnl::gru_backward>(dir);
        break;
      case LSTM: {
        auto hint = dnnl::lstm_forward::primitive_desc(forward_pd.get());
        auto pd = dnnl::lstm_backward::primitive_desc(
            engine, prop, dir, d.src_layer, d.src_iter, d.src_iter_c, d.any_weights_layer,
            d.any_weights_iter, d.bias, d.dst_layer, d.dst_iter, d.dst_iter_c, d.src_layer,
            d.src_iter, d.src_iter_c, d.weights_layer, d.weights_iter, d.bias, d.dst_layer,
            d.dst_iter, d.dst_iter_c, hint);
        backward = dnnl::lstm_backward(pd);
        backward_pd = pd;
        break;
      }
      default:
        TORCH_CHECK(false, "rnnlab_onednn: unknown cell code ", shape.cell);
    }
  }
};

// Primitive creation costs 0.3-15 ms, so primitives are cached per shape. A least-recently-used
// list bounds the cache (language models see many sequence lengths).
constexpr size_t kCacheSize = 64;
std::mutex cache_mutex;
std::list<std::shared_ptr<Primitives>> cache;

std::shared_ptr<Primitives> primitives_for(const Shape& shape, bool need_backward) {
  std::lock_guard<std::mutex> guard(cache_mutex);
  for (auto it = cache.begin(); it != cache.end(); ++it) {
    if ((*it)->shape == shape) {
      cache.splice(cache.begin(), cache, it);
      if (need_backward) (*it)->build_backward();
      return *it;
    }
  }
  auto entry = std::make_shared<Primitives>(shape);
  if (need_backward) entry->build_backward();
  cache.push_front(entry);
  if (cache.size() > kCacheSize) cache.pop_back();
  return entry;
}

memory wrap(const memory::desc& desc, const at::Tensor& tensor) {
  return memory(desc, cpu_engine(), tensor.data_ptr());
}

// `tensor` (in the caller's layout `given`) as a memory in the layout `primitive` wants for
// argument `arg`: the tensor itself when they agree, else a reordered copy that `keep` holds.
memory in_primitive_layout(const dnnl::primitive_desc& primitive, int arg,
                           const memory::desc& given, const at::Tensor& tensor,
                           dnnl::stream& stream, std::vector<at::Tensor>& keep) {
  const auto wanted = primitive.query_md(dnnl::query::exec_arg_md, arg);
  auto user = wrap(given, tensor);
  if (wanted == given) return user;
  auto buffer = at::empty({static_cast<int64_t>(wanted.get_size())},
                          tensor.options().dtype(at::kByte));
  keep.push_back(buffer);
  memory packed(wanted, cpu_engine(), buffer.data_ptr());
  dnnl::reorder(user, packed).execute(stream, user, packed);
  return packed;
}

void check_float_cpu(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous(),
              "rnnlab_onednn: ", name, " must be a contiguous float32 CPU tensor");
}

// oneDNN and torch share libgomp, so the calling thread's OpenMP setting (torch's) applies.
void execute(const dnnl::primitive& primitive, dnnl::stream& stream,
             std::unordered_map<int, memory> args) {
  primitive.execute(stream, args);
  stream.wait();
}

// Returns (output (T, B, D*H), hidden (D, B, H), cell (D, B, H) or empty, workspace (bytes)).
std::vector<at::Tensor> forward(int64_t cell, const at::Tensor& input, const at::Tensor& hidden,
                                const at::Tensor& cell_state, const at::Tensor& weights_layer,
                                const at::Tensor& weights_iter, const at::Tensor& bias,
                                bool training) {
  for (auto& [t, name] : {std::pair{&input, "input"}, {&hidden, "hidden"},
                          {&weights_layer, "weights_layer"}, {&weights_iter, "weights_iter"},
                          {&bias, "bias"}}) {
    check_float_cpu(*t, name);
  }
  const Shape shape{cell, hidden.size(0), input.size(0), input.size(1), input.size(2),
                    hidden.size(2), training};
  auto prims = primitives_for(shape, false);
  const auto& d = prims->d;
  auto output = at::empty({shape.steps, shape.batch, shape.directions * shape.hidden},
                          input.options());
  auto final_hidden = at::empty_like(hidden);
  at::Tensor final_cell;
  dnnl::stream stream(cpu_engine());
  std::vector<at::Tensor> keep;
  const auto& pd = prims->forward_pd;
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC_LAYER, wrap(d.src_layer, input)},
      {DNNL_ARG_SRC_ITER, wrap(d.src_iter, hidden)},
      {DNNL_ARG_WEIGHTS_LAYER, in_primitive_layout(pd, DNNL_ARG_WEIGHTS_LAYER, d.weights_layer,
                                                   weights_layer, stream, keep)},
      {DNNL_ARG_WEIGHTS_ITER, in_primitive_layout(pd, DNNL_ARG_WEIGHTS_ITER, d.weights_iter,
                                                  weights_iter, stream, keep)},
      {DNNL_ARG_BIAS, wrap(d.bias, bias)},
      {DNNL_ARG_DST_LAYER, wrap(d.dst_layer, output)},
      {DNNL_ARG_DST_ITER, wrap(d.dst_iter, final_hidden)},
  };
  if (cell == LSTM) {
    check_float_cpu(cell_state, "cell_state");
    final_cell = at::empty_like(cell_state);
    args.emplace(DNNL_ARG_SRC_ITER_C, wrap(d.src_iter_c, cell_state));
    args.emplace(DNNL_ARG_DST_ITER_C, wrap(d.dst_iter_c, final_cell));
  }
  at::Tensor workspace;
  if (training) {
    const auto desc = prims->forward_pd.workspace_desc();
    workspace = at::empty({static_cast<int64_t>(desc.get_size())},
                          input.options().dtype(at::kByte));
    args.emplace(DNNL_ARG_WORKSPACE, memory(desc, cpu_engine(), workspace.data_ptr()));
  }
  execute(prims->forward, stream, std::move(args));
  return {output, final_hidden, final_cell, workspace};
}

// Returns gradients of (input, hidden, cell or empty, weights_layer (ldigo), weights_iter
// (ldigo), bias).
std::vector<at::Tensor> backward(int64_t cell, const at::Tensor& input, const at::Tensor& hidden,
                                 const at::Tensor& cell_state, const at::Tensor& weights_layer,
                                 const at::Tensor& weights_iter, const at::Tensor& bias,
                                 const at::Tensor& output, const at::Tensor& final_hidden,
                                 const at::Tensor& final_cell, const at::Tensor& grad_output,
                                 const at::Tensor& grad_hidden, const at::Tensor& grad_cell,
                                 const at::Tensor& workspace) {
  for (auto& [t, name] :
       {std::pair{&input, "input"}, {&hidden, "hidden"}, {&weights_layer, "weights_layer"},
        {&weights_iter, "weights_iter"}, {&bias, "bias"}, {&output, "output"},
        {&final_hidden, "final_hidden"}, {&grad_output, "grad_output"},
        {&grad_hidden, "grad_hidden"}}) {
    check_float_cpu(*t, name);
  }
  const Shape shape{cell, hidden.size(0), input.size(0), input.size(1), input.size(2),
                    hidden.size(2), true};
  auto prims = primitives_for(shape, true);
  const auto& d = prims->d;
  const int64_t G = gate_blocks(cell), D = shape.directions;
  auto grad_input = at::empty_like(input);
  auto grad_initial = at::empty_like(hidden);
  // oneDNN accumulates into the weight and bias gradients.
  auto grad_weights_layer = at::zeros({D, shape.input, G, shape.hidden}, input.options());
  auto grad_weights_iter = at::zeros({D, shape.hidden, G, shape.hidden}, input.options());
  auto grad_bias = at::zeros_like(bias);
  at::Tensor grad_initial_cell;
  dnnl::stream stream(cpu_engine());
  std::vector<at::Tensor> keep;
  const auto& pd = prims->backward_pd;
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC_LAYER, wrap(d.src_layer, input)},
      {DNNL_ARG_SRC_ITER, wrap(d.src_iter, hidden)},
      {DNNL_ARG_WEIGHTS_LAYER, in_primitive_layout(pd, DNNL_ARG_WEIGHTS_LAYER,
                                                   d.bwd_weights_layer, weights_layer, stream,
                                                   keep)},
      {DNNL_ARG_WEIGHTS_ITER, in_primitive_layout(pd, DNNL_ARG_WEIGHTS_ITER, d.bwd_weights_iter,
                                                  weights_iter, stream, keep)},
      {DNNL_ARG_BIAS, wrap(d.bias, bias)},
      {DNNL_ARG_DST_LAYER, wrap(d.dst_layer, output)},
      {DNNL_ARG_DST_ITER, wrap(d.dst_iter, final_hidden)},
      {DNNL_ARG_DIFF_DST_LAYER, wrap(d.dst_layer, grad_output)},
      {DNNL_ARG_DIFF_DST_ITER, wrap(d.dst_iter, grad_hidden)},
      {DNNL_ARG_DIFF_SRC_LAYER, wrap(d.src_layer, grad_input)},
      {DNNL_ARG_DIFF_SRC_ITER, wrap(d.src_iter, grad_initial)},
      {DNNL_ARG_DIFF_WEIGHTS_LAYER, wrap(d.weights_layer, grad_weights_layer)},
      {DNNL_ARG_DIFF_WEIGHTS_ITER, wrap(d.weights_iter, grad_weights_iter)},
      {DNNL_ARG_DIFF_BIAS, wrap(d.bias, grad_bias)},
      {DNNL_ARG_WORKSPACE,
       memory(prims->forward_pd.workspace_desc(), cpu_engine(), workspace.data_ptr())},
  };
  if (cell == LSTM) {
    for (auto& [t, name] : {std::pair{&cell_state, "cell_state"}, {&final_cell, "final_cell"},
                            {&grad_cell, "grad_cell"}}) {
      check_float_cpu(*t, name);
    }
    grad_initial_cell = at::empty_like(cell_state);
    args.emplace(DNNL_ARG_SRC_ITER_C, wrap(d.src_iter_c, cell_state));
    args.emplace(DNNL_ARG_DST_ITER_C, wrap(d.dst_iter_c, final_cell));
    args.emplace(DNNL_ARG_DIFF_DST_ITER_C, wrap(d.dst_iter_c, grad_cell));
    args.emplace(DNNL_ARG_DIFF_SRC_ITER_C, wrap(d.src_iter_c, grad_initial_cell));
  }
  execute(prims->backward, stream, std::move(args));
  return {grad_input, grad_initial, grad_initial_cell, grad_weights_layer, grad_weights_iter,
          grad_bias};
}

std::string version() {
  const auto* v = dnnl::version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->patch);
}

}  // namespace

TORCH_LIBRARY(rnnlab_onednn, m) {
  m.def("forward(int cell, Tensor input, Tensor hidden, Tensor cell_state, Tensor weights_layer, "
        "Tensor weights_iter, Tensor bias, bool training) -> Tensor[]");
  m.def("backward(int cell, Tensor input, Tensor hidden, Tensor cell_state, "
        "Tensor weights_layer, Tensor weights_iter, Tensor bias, Tensor output, "
        "Tensor final_hidden, Tensor final_cell, Tensor grad_output, Tensor grad_hidden, "
        "Tensor grad_cell, Tensor workspace) -> Tensor[]");
  m.def("version() -> str", &version);
}

TORCH_LIBRARY_IMPL(rnnlab_onednn, CPU, m) {
  m.impl("forward", &forward);
  m.impl("backward", &backward);
}
