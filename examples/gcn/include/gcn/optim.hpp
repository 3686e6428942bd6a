// gcn: Adam, ReduceLROnPlateau and early stopping with the reference's settings.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ops.hpp"

namespace gcn {

/// Adam (Kingma & Ba) as in PyTorch: bias-corrected moments, no weight decay.
template <class T = float>
class adam {
 public:
  explicit adam(double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
      : lr_(lr), b1_(beta1), b2_(beta2), eps_(eps) {}

  void step(std::vector<matrix<T>>& params, const std::vector<matrix<T>>& grads) {
    if (m_.size() != params.size()) {
      m_.clear();
      v_.clear();
      for (const auto& p : params) {
        m_.push_back(matrix<T>::Zero(p.rows(), p.cols()));
        v_.push_back(matrix<T>::Zero(p.rows(), p.cols()));
      }
    }
    ++t_;
    const double c1 = 1 - std::pow(b1_, static_cast<double>(t_));
    const double c2 = 1 - std::pow(b2_, static_cast<double>(t_));
    const T step = static_cast<T>(lr_ / c1);
    const T inv_c2 = static_cast<T>(1 / c2);
    for (std::size_t i = 0; i < params.size(); ++i) {
      m_[i] = static_cast<T>(b1_) * m_[i] + static_cast<T>(1 - b1_) * grads[i];
      v_[i] = static_cast<T>(b2_) * v_[i] + static_cast<T>(1 - b2_) * grads[i].cwiseAbs2();
      params[i].array() -=
          step * m_[i].array() / ((v_[i].array() * inv_c2).sqrt() + static_cast<T>(eps_));
    }
  }
  [[nodiscard]] double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  [[nodiscard]] std::int64_t steps() const { return t_; }

 private:
  double lr_, b1_, b2_, eps_;
  std::int64_t t_ = 0;
  std::vector<matrix<T>> m_, v_;
};

/// ReduceLROnPlateau (mode 'min', relative threshold), as in PyTorch.
struct plateau_params {
  double factor = 0.33;
  std::int64_t patience = 30;
  std::int64_t cooldown = 10;
  double min_lr = 1e-4;
  double threshold = 1e-4;  ///< improvement means metric < best * (1 - threshold)
};

class reduce_on_plateau {
 public:
  explicit reduce_on_plateau(plateau_params p = {}) : p_(p) {}

  /// Feeds one epoch's metric; returns the learning rate to use next.
  double step(double metric, double lr) {
    if (metric < best_ * (1 - p_.threshold)) {
      best_ = metric;
      bad_ = 0;
    } else {
      ++bad_;
    }
    if (cooldown_left_ > 0) {
      --cooldown_left_;
      bad_ = 0;
    }
    if (bad_ > p_.patience) {
      const double nl = std::max(lr * p_.factor, p_.min_lr);
      if (lr - nl > 1e-8) lr = nl;
      cooldown_left_ = p_.cooldown;
      bad_ = 0;
    }
    return lr;
  }
  [[nodiscard]] std::int64_t bad_epochs() const { return bad_; }

 private:
  plateau_params p_;
  double best_ = std::numeric_limits<double>::infinity();
  std::int64_t bad_ = 0, cooldown_left_ = 0;
};

/// Early stopping on validation accuracy: stop once `patience` epochs passed without a new
/// best, but never before `min_epochs`. (Reference: patience 100 after epoch 300.)
class early_stopping {
 public:
  early_stopping(std::int64_t patience, std::int64_t min_epochs)
      : patience_(patience), min_epochs_(min_epochs) {}

  /// Feeds epoch `epoch` (0-based); returns true when the model of this epoch is the new best.
  bool update(std::int64_t epoch, double val_acc) {
    if (val_acc > best_) {
      best_ = val_acc;
      best_epoch_ = epoch;
      return true;
    }
    return false;
  }
  [[nodiscard]] bool should_stop(std::int64_t epoch) const {
    return epoch + 1 >= min_epochs_ && epoch - best_epoch_ >= patience_;
  }
  [[nodiscard]] double best() const { return best_; }
  [[nodiscard]] std::int64_t best_epoch() const { return best_epoch_; }

 private:
  std::int64_t patience_, min_epochs_;
  double best_ = -1;
  std::int64_t best_epoch_ = -1;
};

}  // namespace gcn
