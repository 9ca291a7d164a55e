// Small Dear ImGui helpers the demo's panels share (demo_app.cpp, demo_teach.cpp).
#pragma once

#include <imgui.h>

#include "demo_textures.hpp"

namespace capsnet {

inline const ImU32 highlight_colour = IM_COL32(255, 196, 0, 255);
inline const ImVec4 error_colour(1, 0.45f, 0.45f, 1);

// Grey explanatory text, wrapped at the panel's edge (the panels are narrow on a phone).
inline void note(const char* text) {
    ImGui::PushStyleColor(ImGuiCol_Text, ImGui::GetStyleColorVec4(ImGuiCol_TextDisabled));
    ImGui::TextWrapped("%s", text);
    ImGui::PopStyleColor();
}

// SameLine when an item `width` wide still fits on the current line, else a new line.
inline void same_line_if_fits(float width) {
    ImGui::SameLine();
    if (ImGui::GetContentRegionAvail().x < width) ImGui::NewLine();
}

// A picture `size` wide and tall (the part uv0..uv1 of `texture`) that reports clicks; returns true when
// clicked. `framed` draws the highlight around it.
inline bool image_button(const char* id, const Texture& texture, ImVec2 size, ImVec2 uv0, ImVec2 uv1, bool framed) {
    const ImVec2 corner = ImGui::GetCursorScreenPos();
    const bool clicked = ImGui::InvisibleButton(id, size);
    ImDrawList* draw = ImGui::GetWindowDrawList();
    draw->AddImage(texture.id(), corner, ImVec2(corner.x + size.x, corner.y + size.y), uv0, uv1);
    if (framed) draw->AddRect(corner, ImVec2(corner.x + size.x, corner.y + size.y), highlight_colour, 0, 0, 2.5f);
    else if (ImGui::IsItemHovered())
        draw->AddRect(corner, ImVec2(corner.x + size.x, corner.y + size.y), IM_COL32(160, 160, 160, 255));
    return clicked;
}

}  // namespace capsnet
