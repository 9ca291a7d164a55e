// Helpers every module uses.
#include "capsnet/common.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace capsnet {

std::vector<std::uint8_t> read_whole_file(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a directory, not a file");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open file for reading (missing or unreadable)");
    in.seekg(0, std::ios::end);
    const std::streamoff length = in.tellg();
    if (length < 0) throw Error(path + ": cannot determine the file size");
    in.seekg(0, std::ios::beg);
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(length));
    if (!bytes.empty()) in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!in || in.gcount() != static_cast<std::streamsize>(bytes.size()))
        throw Error(path + ": read error (file changed or unreadable while reading)");
    return bytes;
}

void write_whole_file_atomically(const std::string& path, const std::vector<std::uint8_t>& bytes) {
    const std::string temp = path + ".tmp";
    {
        std::ofstream out(temp, std::ios::binary | std::ios::trunc);
        if (!out) throw Error(temp + ": cannot open for writing");
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        out.flush();
        if (!out) {
            out.close();
            std::remove(temp.c_str());
            throw Error(temp + ": write failed (disk full?)");
        }
        out.close();
        if (out.fail()) {
            std::remove(temp.c_str());
            throw Error(temp + ": closing the file failed (disk full?)");
        }
    }
    if (std::rename(temp.c_str(), path.c_str()) != 0) {
        std::remove(temp.c_str());
        throw Error(path + ": cannot rename " + temp + " over it");
    }
}

}  // namespace capsnet
