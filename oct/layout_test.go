package oct

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCubeNaming(t *testing.T) {
	const cube = "P0012_MacularCube512x128_8-7-2014_13-29-39_OS_sn27946_cube_z"
	assert.Equal(t, cube+".img", ImageFolder(cube))
	assert.Equal(t, cube+"_labelMark", LabelFolder(cube))
	for _, folder := range []string{
		cube,
		cube + ".img",
		cube + "_labelMark",
		"Edema_testset/trans3channel_images/" + cube + ".img",
		"Edema_validationset/label_images/" + cube + "_labelMark/",
	} {
		assert.Equal(t, cube, CubeName(folder), folder)
	}
	assert.Equal(t, "Edema_trainingset/original_images/"+cube+".img", Training.OriginalDir(cube))
	assert.Equal(t, "Edema_validationset/label_images/"+cube+"_labelMark", Validation.LabelDir(cube))
	assert.Equal(t, "Edema_testset/trans3channel_images/"+cube+".img", Test.StackDir(cube))
	assert.Equal(t, "Edema_validationset/groundtruth", Validation.GroundTruthDir())
}

func TestFileNames(t *testing.T) {
	assert.Equal(t, "1.bmp", SliceFile(1))
	assert.Equal(t, "128.bmp", SliceFile(128))
	assert.Equal(t, "000.png", StackFile(0))
	assert.Equal(t, "007.png", StackFile(7))
	assert.Equal(t, "127.png", StackFile(127))
	for stack, label := range map[string]string{"000.png": "1.bmp", "009.png": "10.bmp", "127.png": "128.bmp"} {
		got, err := LabelFileOfStack(stack)
		require.NoError(t, err)
		assert.Equal(t, label, got)
	}
	_, err := LabelFileOfStack("x.png")
	assert.ErrorContains(t, err, "x.png")
}

func touch(t *testing.T, dir string, names ...string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for _, n := range names {
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), nil, 0o644))
	}
}

func TestNumberedFilesSortsByNumber(t *testing.T) {
	dir := t.TempDir()
	touch(t, dir, "10.bmp", "2.bmp", "1.bmp", "9.bmp", "100.bmp", "11.BMP", ".DS_Store", "Thumbs.db", ".3.bmp")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "5.bmp.d"), 0o755))
	names, err := NumberedFiles(dir, ".bmp")
	require.NoError(t, err)
	assert.Equal(t, []string{"1.bmp", "2.bmp", "9.bmp", "10.bmp", "11.BMP", "100.bmp"}, names)
}

func TestNumberedFilesErrors(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		want  string
	}{
		{"not a number", []string{"1.bmp", "a.bmp"}, "a.bmp: file name is not <number>.bmp"},
		{"negative", []string{"-1.bmp"}, "-1.bmp"},
		{"same number twice", []string{"1.bmp", "01.bmp"}, "have the same number"},
		{"empty", []string{"notes.txt"}, "no numbered .bmp files"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			touch(t, dir, tc.files...)
			_, err := NumberedFiles(dir, ".bmp")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), dir)
		})
	}
	_, err := NumberedFiles(filepath.Join(t.TempDir(), "missing"), ".bmp")
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestCubesListsSortedFolders(t *testing.T) {
	data := t.TempDir()
	base := inData(data, "Edema_trainingset/original_images")
	for _, d := range []string{"PB_cube_z.img", "PA_cube_z.img", ".hidden.img", "notes"} {
		require.NoError(t, os.MkdirAll(filepath.Join(base, d), 0o755))
	}
	touch(t, base, "PC_cube_z.img") // a file, not a folder
	cubes, err := Cubes(data, Training)
	require.NoError(t, err)
	assert.Equal(t, []string{"PA_cube_z", "PB_cube_z"}, cubes)

	_, err = Cubes(data, Test)
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = PreparedCubes(data, Training)
	assert.ErrorIs(t, err, os.ErrNotExist)
}
