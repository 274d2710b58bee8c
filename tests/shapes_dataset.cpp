// See shapes_dataset.h.
#include "shapes_dataset.h"

#include <filesystem>
#include <fstream>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace halo::test {

std::string make_shapes_dataset(const std::string& dir, int n, int size, int mismatch_every) {
  const char* colours[] = {"red", "green", "blue", "black"};
  const cv::Scalar bgr[] = {{0, 0, 220}, {0, 180, 0}, {220, 0, 0}, {0, 0, 0}};
  const char* shapes[] = {"circle", "square", "horizontal bar", "vertical bar"};
  std::filesystem::create_directories(dir + "/img");
  std::ofstream manifest(dir + "/manifest.tsv");
  manifest << "image_path\tcaption\tmismatched\tlabel\n";
  for (int i = 0; i < n; ++i) {
    const int c = i % 4, s = (i / 4) % 4, jitter = (i / 16) % 3 - 1;
    cv::Mat img(size, size, CV_8UC3, cv::Scalar(255, 255, 255));
    const cv::Point mid(size / 2 + jitter, size / 2 - jitter);
    const int r = size / 3;
    if (s == 0) cv::circle(img, mid, r, bgr[c], cv::FILLED);
    if (s == 1)
      cv::rectangle(img, mid - cv::Point(r, r), mid + cv::Point(r, r), bgr[c], cv::FILLED);
    if (s == 2)
      cv::rectangle(img, mid - cv::Point(r, r / 3), mid + cv::Point(r, r / 3), bgr[c], cv::FILLED);
    if (s == 3)
      cv::rectangle(img, mid - cv::Point(r / 3, r), mid + cv::Point(r / 3, r), bgr[c], cv::FILLED);
    const std::string name = "img/" + std::to_string(i) + ".png";
    cv::imwrite(dir + "/" + name, img);
    const bool swap = mismatch_every > 0 && i % mismatch_every == mismatch_every - 1;
    // A mismatched caption names another colour and another shape.
    const int cc = swap ? (c + 1) % 4 : c, ss = swap ? (s + 2) % 4 : s;
    manifest << name << "\ta " << colours[cc] << " " << shapes[ss] << "\t" << (swap ? 1 : 0) << "\t"
             << s << "\n";
  }
  std::ofstream classes(dir + "/classes.txt");
  for (const char* shape : shapes) classes << shape << "\n";
  return dir + "/manifest.tsv";
}

}  // namespace halo::test
